"""E-mail notices about claims, payouts and certifications.

A notice is queued in the transaction that causes it (dropped on rollback)
and composed by a job after commit, from the database and the ledger as they
are when it is sent: the figures in an e-mail are the ledger's at that time.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select

from jobs.queue import enqueue_after_commit
from marketplace.extensions import db

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
    from flask import current_app

    from marketplace.claims.models import Claim
    from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry
    from marketplace.money import fee_of

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
    from marketplace.i18n import format_money

    return " + ".join(format_money(int(amount), currency) for amount, currency in pairs)


def _money_line(figures: dict, *, to_claimant: bool) -> str:
    if not figures.get("escrow"):
        return _("Nothing is in escrow for this item yet.")
    if to_claimant:
        return _("%(escrow)s in escrow, about %(net)s to you.", escrow=_money_list(figures["escrow"]),
                 net=_money_list(figures["net"]))
    return _("%(escrow)s in escrow, about %(net)s to the implementor after the commons' fee.",
             escrow=_money_list(figures["escrow"]), net=_money_list(figures["net"]))


def payout_event(payout_id: int, kind: str) -> None:
    """Queue ``proposed`` or ``approved`` about a payout (to maintainers and
    recipients), with the item's escrow in the payout's currency as the ledger
    holds it now: ``{"escrow": [[minor, currency]]}``."""
    from marketplace.ledger import service as ledger
    from marketplace.ledger.models import AccountKind
    from marketplace.payouts.models import Payout

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
    _queue("certification", "granted", certification_id)


def _queue(subject: str, kind: str, object_id: int, figures: dict | None = None) -> None:
    from jobs.notifications import send_notice

    args = (subject, kind, object_id) if figures is None else (subject, kind, object_id, figures)
    enqueue_after_commit(db.session, send_notice, *args, queue="notifications", timeout=60,
                         retries=3, retry_intervals=[30, 300, 1800])


def compose(subject: str, kind: str, object_id: int, figures: dict | None = None) -> list[tuple[str, str, str]]:
    """The e-mails (to, subject, body) of one notice, built now. Empty when
    the object is gone or nobody has a confirmed address. ``figures`` are
    the money figures taken when the notice was queued (claims); without
    them, they are read now."""
    if subject == "claim":
        mails = _claim(kind, object_id, figures if figures is not None else claim_figures(object_id))
    elif subject == "payout":
        mails = _payout(kind, object_id, figures)
    else:
        builder = {"share": _share, "certification": _certification}[subject]
        mails = builder(kind, object_id)
    return [(to, title, body) for to, title, body in mails if to]


def _maintainer_emails(project_id: int) -> list[str]:
    from marketplace.accounts.models import User
    from marketplace.projects.models import ProjectMaintainer

    return list(db.session.scalars(select(User.email).join(ProjectMaintainer, ProjectMaintainer.user_id == User.id)
                                   .where(ProjectMaintainer.project_id == project_id,
                                          User.email_verified_at.is_not(None))))


def _link(endpoint: str, **values) -> str:
    from marketplace.accounts.service import url_for_public

    return url_for_public(endpoint, **values)


def _claim(kind: str, claim_id: int, figures: dict):
    from marketplace.claims.models import Claim

    claim = db.session.get(Claim, claim_id)
    if claim is None:
        return []
    item, person = claim.item, claim.claimant
    link = _link("claims.show", claim_id=claim.id)
    if kind == "requested":
        return [(to, _("New claim on \"%(title)s\"", title=item.title),
                 _("%(name)s asks to work on \"%(title)s\" by %(deadline)s.\n\nPlan:\n%(plan)s\n\n%(money)s\n\n"
                   "Decide: %(link)s", name=person.display_name, title=item.title,
                   deadline=claim.deadline.isoformat(), plan=claim.plan,
                   money=_money_line(figures, to_claimant=False), link=link))
                for to in _maintainer_emails(item.repository.project_id)]
    texts = {
        "approved": (_("Your claim was approved"),
                     _("You may work on \"%(title)s\". Your deadline is %(deadline)s (UTC). Link your pull or "
                       "merge request with a closing keyword (\"Fixes #%(number)d\").\n\n%(link)s")),
        "rejected": (_("Your claim was not approved"),
                     _("Your claim on \"%(title)s\" was ended by a maintainer. Note: %(note)s\n\n%(link)s")),
        "lapsing": (_("Your claim's deadline is near"),
                    _("Your claim on \"%(title)s\" lapses after %(deadline)s (UTC) unless a pull or merge request "
                      "of yours closes the item by then.\n\n%(link)s")),
        "lapsed": (_("Your claim lapsed"),
                   _("Your claim on \"%(title)s\" passed its deadline (%(deadline)s) with no linked change, so "
                     "it lapsed. You may request it again.\n\n%(link)s")),
        "cancelled": (_("Your claim was cancelled"),
                      _("\"%(title)s\" ended on the forge without the work (%(note)s), so your claim on it "
                        "was cancelled. Nobody will be paid for it.\n\n%(link)s")),
        "unverified_author": (_("Connect your forge account to be paid"),
                              _("A merged change solved \"%(title)s\", but its author's forge account is not "
                                "connected to your account here, so it does not count for your claim. If you "
                                "wrote it, connect that account on your account page (\"Connect GitHub\" or "
                                "\"Connect GitLab\"), then ask a maintainer to pay you: the payout waits for "
                                "them.\n\n%(link)s")),
    }
    title, body = texts[kind]
    body = body % {"title": item.title, "deadline": claim.deadline.isoformat(), "number": item.number,
                   "note": claim.decision_note or "-", "link": link}
    return [(person.email if person.email_verified_at else None, title,
             f"{_money_line(figures, to_claimant=True)}\n\n{body}")]


def _payout(kind: str, payout_id: int, figures: dict | None = None):
    from marketplace.i18n import format_money
    from marketplace.ledger import service as ledger
    from marketplace.ledger.models import AccountKind
    from marketplace.payouts.models import Payout

    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return []
    item = payout.item
    link = _link("payouts.show", payout_id=payout.id)
    if figures and figures.get("escrow"):
        escrow = int(figures["escrow"][0][0])  # as the ledger held it when the notice was queued
    else:
        escrow = ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item.id), payout.currency)
    if kind == "proposed":
        body = _("\"%(title)s\" is done. The item's escrow now holds %(escrow)s. Approve the payout (and split "
                 "it if several people did the work):\n\n%(link)s",
                 title=item.title, escrow=format_money(escrow, payout.currency), link=link)
        people = [payout.suggested_recipient] if payout.suggested_recipient else []
        return ([(to, _("Payout proposed: %(title)s", title=item.title), body)
                 for to in _maintainer_emails(item.repository.project_id)]
                + [(p.email if p.email_verified_at else None, _("Payout proposed: %(title)s", title=item.title),
                    _("Your work on \"%(title)s\" merged. A maintainer will approve the payout.\n\n%(link)s",
                      title=item.title, link=link)) for p in people])
    mails = []
    for share in payout.shares:
        mails.append((share.recipient.email if share.recipient.email_verified_at else None,
                      _("Payout approved: %(title)s", title=item.title),
                      _("Your share of %(amount)s for \"%(title)s\" was approved. It is paid after %(when)s "
                        "(UTC), once the dispute window has passed.\n\n%(link)s",
                        amount=format_money(share.amount_minor, payout.currency), title=item.title,
                        when=payout.execute_after.strftime("%Y-%m-%d %H:%M") if payout.execute_after else "-",
                        link=link)))
    return mails


def _share(kind: str, share_id: int):
    from marketplace.i18n import format_money
    from marketplace.ledger.models import LedgerEntry, LedgerTransaction
    from marketplace.payouts.models import PayoutShare

    share = db.session.get(PayoutShare, share_id)
    if share is None:
        return []
    payout, person = share.payout, share.recipient
    to = person.email if person.email_verified_at else None
    link = _link("payouts.show", payout_id=payout.id)
    settings = _link("payouts.settings")
    if kind == "paid":
        # The amount as the ledger recorded the payment, not as the share row says.
        paid = db.session.scalar(select(LedgerEntry.amount_minor).join(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == f"payout-share:{share.id}:paid", LedgerEntry.amount_minor > 0))
        if paid is None:
            return []
        return [(to, _("You were paid"), _("%(amount)s for \"%(title)s\" was sent to you.\n\n%(link)s",
                                           amount=format_money(paid, payout.currency),
                                           title=payout.item.title, link=link))]
    if kind == "returned":
        return [(to, _("Your payout came back to us"),
                 _("The transfer of %(amount)s for \"%(title)s\" came back to the fiscal host, so it is recorded as "
                   "not paid (%(reason)s). Check your payout details; the money is in the item's escrow again "
                   "and will be paid again after a maintainer approves it.\n\n%(settings)s",
                   amount=format_money(share.amount_minor, payout.currency), title=payout.item.title,
                   reason=(payout.flag_reason or "-"), settings=settings))]
    if kind == "failed":
        return [(to, _("A payout to you failed"),
                 _("Sending your share of \"%(title)s\" failed: %(error)s. We try again by ourselves; the money "
                   "stays owed to you.\n\n%(link)s", title=payout.item.title, error=share.last_error or "-",
                   link=link))]
    return [(to, _("How to receive your payout"),
             _("You are owed %(amount)s for \"%(title)s\". %(what)s\n\n%(settings)s",
               amount=format_money(share.amount_minor, payout.currency), title=payout.item.title,
               what=_how_to_receive(share), settings=settings))]


def _how_to_receive(share) -> str:
    from marketplace.payouts.models import PayoutAccount, ShareState

    if share.state is ShareState.awaiting_manual_payout:
        return _("The fiscal host pays you by bank or mobile-money transfer; check your payout details.")
    if share.state is ShareState.awaiting_certification:
        return _("It is paid once you are certified (the commons' training, or a maintainer of the project).")
    account = db.session.get(PayoutAccount, share.recipient_id)
    missing = account.requirements if account is not None and account.requirements else None
    if missing:
        return _("Your Stripe account cannot receive transfers yet. Stripe still needs: %(missing)s.",
                 missing=missing)
    return _("Set up how you are paid (a Stripe account, or a bank or mobile-money transfer).")


def _certification(kind: str, certification_id: int):
    from marketplace.claims.models import Certification

    cert = db.session.get(Certification, certification_id)
    if cert is None:
        return []
    scope = cert.project.name if cert.project else _("every member project")
    return [(cert.user.email if cert.user.email_verified_at else None, _("You are certified"),
             _("You are certified to be paid for work on %(scope)s until %(until)s (UTC). Payouts waiting for "
               "your certification go ahead now.", scope=scope, until=cert.expires_at.strftime("%Y-%m-%d")))]
