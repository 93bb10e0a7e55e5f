"""E-mail notices about claims, payouts and certifications.

A notice is stored in the outbox table in the transaction that causes it
(dropped on rollback) and composed by a job after commit, from the database and the ledger as they
are when it is sent: the figures in an e-mail are the ledger's at that time.
Each e-mail's words are its templates (``templates/email/<notice>/``).
"""
from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import func, select

from marketplace.accounts.models import Organisation, User
from marketplace.claims.models import Certification, Claim
from marketplace.extensions import db
from marketplace.i18n import format_money
from marketplace.ledger import service as ledger
from marketplace.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from marketplace.money import fee_of
from marketplace.notifications.links import url_for_public
from marketplace.notifications.mail import recipient_language, render
from marketplace.notifications.outbox import add_notice
from marketplace.payouts.models import Payout, PayoutAccount, PayoutShare, ShareState
from marketplace.projects.models import ProjectMaintainer
from marketplace.training.models import TrainingClaim

CLAIM_KINDS = ("requested", "approved", "rejected", "lapsing", "lapsed", "cancelled", "unverified_author")
PAYOUT_KINDS = ("proposed", "approved", "paid", "failed", "how_to_receive", "returned")


def claim_event(claim_id: int, kind: str) -> None:
    """Queue the notice ``kind`` (one of :data:`CLAIM_KINDS`) about a claim, with
    the item's money as the ledger holds it now (:func:`claim_figures`)."""
    _queue("claim", kind, claim_id, claim_figures(claim_id))


def claim_figures(claim_id: int) -> dict:
    """The money a claim e-mail states, from the ledger at the time of queueing:
    ``{"escrow": [[minor, currency], …], "net": [[minor, currency], …]}`` per
    currency the item's escrow holds; ``net`` is the escrow less the project's
    fee (:func:`marketplace.money.fee_of`), what the claimant would get alone.
    Escrow 30.00 USD at a 10% fee: ``{"escrow": [[3000, "USD"]], "net": [[2700, "USD"]]}``."""
    claim = db.session.get(Claim, claim_id)
    if claim is None:
        return {"escrow": [], "net": []}
    rate = claim.item.repository.project.fee_rate(current_app.config["DEFAULT_FEE_RATE_BPS"])
    rows = db.session.execute(
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.kind == AccountKind.item_escrow, LedgerAccount.item_id == claim.item_id)
        .group_by(LedgerEntry.currency).order_by(LedgerEntry.currency)).all()
    escrow = [[int(total), currency] for currency, total in rows if total and int(total) > 0]
    return {"escrow": escrow, "net": [[amount - fee_of(amount, rate), currency] for amount, currency in escrow]}


def _money_list(pairs) -> str:
    return " + ".join(format_money(int(amount), currency) for amount, currency in pairs)


def payout_event(payout_id: int, kind: str) -> None:
    """Queue ``proposed`` or ``approved`` about a payout (to maintainers and
    recipients), with the item's escrow in the payout's currency as the ledger
    holds it now: ``{"escrow": [[minor, currency]]}``."""
    payout = db.session.get(Payout, payout_id)
    figures = None
    if payout is not None:
        escrow = ledger.balance(ledger.account(AccountKind.item_escrow, item_id=payout.item_id), payout.currency)
        figures = {"escrow": [[escrow, payout.currency]]}
    _queue("payout", kind, payout_id, figures)


def share_event(share_id: int, kind: str) -> None:
    """Queue ``paid``, ``failed``, ``how_to_receive`` or ``returned`` to one share's recipient."""
    _queue("share", kind, share_id)


def certification_granted(certification_id: int) -> None:
    """Queue the notice to the person a certification was granted to."""
    _queue("certification", "granted", certification_id)


def certification_earned(certification_id: int) -> None:
    """Queue the notice to a trainee who earned a project's certification through training (issue 19)."""
    _queue("certification", "earned", certification_id)


def mentor_changed(claim_id: int) -> None:
    """Queue the notice that another mentor took over a training claim whose mentor
    was gone (issue 19): to the trainee and to the new mentor."""
    _queue("training", "mentor_changed", claim_id)


def _queue(subject: str, kind: str, object_id: int, figures: dict | None = None) -> None:
    # A row in the outbox table, in the transaction that causes the notice.
    add_notice(subject, kind, object_id, figures)


def compose(subject: str, kind: str, object_id: int, figures: dict | None = None) -> list[tuple[str, str, str]]:
    """The e-mails (to, subject, body) of one notice, built now, each in its
    recipient's language (:func:`_language`). Empty when the object is gone or nobody has a confirmed address.
    ``figures`` are the money figures taken when the notice was queued
    (claims); without them, they are read now."""
    if subject == "claim":
        mails = _claim(kind, object_id, figures if figures is not None else claim_figures(object_id))
    elif subject == "payout":
        mails = _payout(kind, object_id, figures)
    else:
        builder = {"share": _share, "certification": _certification, "training": _training}[subject]
        mails = builder(kind, object_id)
    return [(to, title, body) for to, title, body in mails if to]


def _language(person: User | None) -> str:
    """The person's chosen language, else that of the last page where they acted,
    else the default (English): a job has no page of its own."""
    if person is None:
        return recipient_language(None)
    return recipient_language(person.preferred_language, person.last_language)


def _confirmed(person: User) -> str | None:
    return person.email if person.email_verified_at else None


def _maintainers(project_id: int) -> list[User]:
    return list(db.session.scalars(select(User).join(ProjectMaintainer, ProjectMaintainer.user_id == User.id)
                                   .where(ProjectMaintainer.project_id == project_id,
                                          User.email_verified_at.is_not(None)).order_by(User.id)))


def _claim(kind: str, claim_id: int, figures: dict):
    claim = db.session.get(Claim, claim_id)
    if claim is None:
        return []
    item, person = claim.item, claim.claimant
    context = {"claim": claim, "item": item, "person": person, "deadline": claim.deadline,
               "note": claim.decision_note or "-", "link": url_for_public("claims.show", claim_id=claim.id)}

    def mail_in(language: str, notice: str, **extra):
        with force_locale(language):  # the amounts are written the recipient's way
            money = {"escrow": _money_list(figures.get("escrow") or []),
                     "net": _money_list(figures.get("net") or [])}
        return render(notice, language, **context, **money, **extra)

    if kind == "requested":
        return [(m.email, *mail_in(_language(m), "claim_requested", to_claimant=False))
                for m in _maintainers(item.repository.project_id)]
    if kind not in CLAIM_KINDS:
        raise KeyError(kind)
    return [(_confirmed(person), *mail_in(_language(person), f"claim_{kind}", to_claimant=True))]


def _payout(kind: str, payout_id: int, figures: dict | None = None):
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return []
    item = payout.item
    link = url_for_public("payouts.show", payout_id=payout.id)
    if figures and figures.get("escrow"):
        escrow = int(figures["escrow"][0][0])  # as the ledger held it when the notice was queued
    else:
        escrow = ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item.id), payout.currency)
    if kind == "proposed":
        people = [payout.suggested_recipient] if payout.suggested_recipient else []
        return ([(m.email, *render("payout_proposed", _language(m), payout=payout, item=item,
                                   escrow_minor=escrow, link=link))
                 for m in _maintainers(item.repository.project_id)]
                + [(_confirmed(p), *render("payout_proposed_recipient", _language(p), payout=payout,
                                           item=item, link=link))
                   for p in people])
    return [(_confirmed(share.recipient), *render("payout_approved", _language(share.recipient),
                                                  payout=payout, item=item, share=share, link=link))
            for share in payout.shares]


def _share(kind: str, share_id: int):
    share = db.session.get(PayoutShare, share_id)
    if share is None:
        return []
    payout = share.payout
    to = _confirmed(share.recipient)
    language = _language(share.recipient)
    if to is None:
        # A firm's payee account has no address: its owner hears of the firm's money (issue 20).
        owner = db.session.scalar(select(User).join(Organisation, Organisation.owner_id == User.id)
                                  .where(Organisation.payee_id == share.recipient_id))
        if owner is not None:
            to, language = _confirmed(owner), _language(owner)
    context = {"share": share, "payout": payout, "link": url_for_public("payouts.show", payout_id=payout.id),
               "settings": url_for_public("payouts.settings")}
    if kind == "paid":
        # The amount as the ledger recorded the payment, not as the share row says.
        paid = db.session.scalar(select(LedgerEntry.amount_minor).join(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == f"payout-share:{share.id}:paid", LedgerEntry.amount_minor > 0))
        if paid is None:
            return []
        return [(to, *render("share_paid", language, paid_minor=paid, **context))]
    if kind in ("returned", "failed"):
        return [(to, *render(f"share_{kind}", language, **context))]
    return [(to, *render("share_how_to_receive", language, **_how_to_receive(share), **context))]


def _how_to_receive(share: PayoutShare) -> dict:
    """What the recipient of a waiting share must know: ``way`` (``manual``,
    ``certification`` or ``stripe``) and what Stripe still ``missing`` (or None)."""
    if share.state is ShareState.awaiting_manual_payout:
        return {"way": "manual", "missing": None}
    if share.state is ShareState.awaiting_certification:
        return {"way": "certification", "missing": None}
    account = db.session.get(PayoutAccount, share.recipient_id)
    return {"way": "stripe", "missing": account.requirements if account is not None and account.requirements
            else None}


def _certification(kind: str, certification_id: int):
    cert = db.session.get(Certification, certification_id)
    if cert is None:
        return []
    notice = "certification_earned" if kind == "earned" else "certification_granted"
    return [(_confirmed(cert.user), *render(notice, _language(cert.user), cert=cert,
                                            link=url_for_public("training.progress")))]


def _training(kind: str, claim_id: int):
    """``mentor_changed``: the trainee (``mentor_changed``) and the new mentor
    (``mentor_taken_over``) of a training claim, each in their language."""
    if kind != "mentor_changed":
        raise KeyError(kind)
    claim = db.session.get(Claim, claim_id)
    record = db.session.get(TrainingClaim, claim_id) if claim is not None else None
    if record is None or record.mentor is None:
        return []
    context = {"claim": claim, "item": claim.item, "trainee": claim.claimant, "mentor": record.mentor,
               "link": url_for_public("claims.show", claim_id=claim.id)}
    return [(_confirmed(claim.claimant), *render("mentor_changed", _language(claim.claimant), **context)),
            (_confirmed(record.mentor), *render("mentor_taken_over", _language(record.mentor), **context))]
