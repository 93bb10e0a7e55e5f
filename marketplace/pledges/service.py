"""Pledges and their money: created pending, held when received, refunded
exactly. Every money move is a ledger transaction keyed by our own row id or
the provider's refund id, under a row lock on the pledge. Services flush,
never commit."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.audit.models import AuditEvent
from marketplace.backlog.close_reasons import CloseReason, reason_text
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.queries import not_done_condition, work_went_to
from marketplace.claims.models import HOLDING_CLAIM_STATES, Claim, ClaimState
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.fiscal_host import contact as fiscal_host_contact
from marketplace.i18n import format_money
from marketplace.ledger import service as ledger
from marketplace.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from marketplace.money import Money, exponent, stripe_minimum
from marketplace.notifications import mail
from marketplace.notifications.links import url_for_public
from marketplace.payments import stripe_client
from marketplace.payments.stripe_client import PaymentsUnavailable
from marketplace.payouts.models import OPEN_PAYOUT_STATES, Payout, PayoutState
from marketplace.pledges import signals
from marketplace.pledges.models import (
    ALLOWED_FROM,
    Pledge,
    PledgeState,
    Rail,
    RefundFailure,
)
from marketplace.timeutil import utcnow

DEFAULT_EXPIRY = timedelta(days=365)


class PledgeError(DomainError):
    """A pledge operation that cannot be done; the message is for the person."""


class PledgeAmountError(PledgeError):
    """A pledge amount the form refuses; ``field`` names the form field the message belongs next to."""

    def __init__(self, message: str, field: str = "amount"):
        super().__init__(message)
        self.field = field


def check_amount(money: Money, rail: Rail, *, confirmed: bool) -> None:
    """Refuse, before any pledge row or Stripe request, an amount the commons or the rail cannot take.

    - Above ``PLEDGE_MAX_AMOUNT`` (major units of the pledge's currency,
      default 100,000): refused.
    - Above ``PLEDGE_CONFIRM_ABOVE`` (default 10,000): taken only when the
      funder ticked the confirmation (``confirmed``; field ``confirm_large``).
    - By card, below Stripe's minimum charge for the currency
      (:data:`marketplace.money.STRIPE_MINIMUM_CHARGE`): refused, naming it
      (``0.10 USD`` → "at least USD 0.50").
    Raises :class:`PledgeAmountError` with the message for the person.
    """
    unit = 10 ** exponent(money.currency)
    ceiling = current_app.config["PLEDGE_MAX_AMOUNT"] * unit
    confirm_above = current_app.config["PLEDGE_CONFIRM_ABOVE"] * unit
    if money.amount_minor > ceiling:
        raise PledgeAmountError(_("One pledge can be at most %(limit)s. Split a larger gift into several pledges, "
                                  "or write to %(host)s.", limit=format_money(ceiling, money.currency),
                                  host=fiscal_host_contact()))
    if money.amount_minor > confirm_above and not confirmed:
        raise PledgeAmountError(_("%(amount)s is more than %(limit)s: tick the box to confirm this amount.",
                                  amount=format_money(money.amount_minor, money.currency),
                                  limit=format_money(confirm_above, money.currency)), field="confirm_large")
    minimum = stripe_minimum(money.currency)
    if rail is Rail.card and minimum is not None and money.amount_minor < minimum.amount_minor:
        digits = exponent(minimum.currency)
        raise PledgeAmountError(_("Card payments in %(currency)s must be at least %(currency)s %(minimum)s "
                                  "(%(formatted)s), Stripe's smallest charge. Pledge at least that much, or pay by "
                                  "bank transfer.", currency=minimum.currency,
                                  minimum=f"{minimum.decimal:.{digits}f}",
                                  formatted=format_money(minimum.amount_minor, minimum.currency)))


def _pending_projection(item_id: int, currency: str, delta: int) -> None:
    ledger.funding_row(item_id, currency).pending_minor += delta
    db.session.flush()


def pledging_closed(item: BacklogItem) -> bool:
    """New pledges are not taken once the item is solved (a merged change
    closes it) or closed: no payout could follow, the money would only wait
    to go back."""
    return item.work_done


def create(item: BacklogItem, funder_id: int, money: Money, *, rail: Rail, expires_at: datetime | None = None,
           show_name: bool = False, actor: str) -> Pledge:
    """A pending pledge; shown apart from the bounty until the money arrives."""
    pledge = Pledge(item=item, funder_id=funder_id, amount_minor=money.amount_minor, currency=money.currency,
                    rail=rail, show_name=show_name, expires_at=expires_at or utcnow() + DEFAULT_EXPIRY)
    db.session.add(pledge)
    db.session.flush()
    _pending_projection(item.id, money.currency, money.amount_minor)
    audit.record("pledge.created", "pledge", pledge.id, actor=actor,
                 details={"amount_minor": money.amount_minor, "currency": money.currency, "rail": rail.value})
    return pledge


def transition(pledge_id: int, to: PledgeState) -> bool:
    """Move the pledge to ``to`` if its state allows it: one conditional UPDATE.

    Returns False (changing nothing) when the state does not allow it, e.g. a
    late or repeated event.
    """
    result = db.session.execute(
        update(Pledge)
        .where(Pledge.id == pledge_id, Pledge.state.in_(ALLOWED_FROM[to]))
        .values(state=to)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()
    return result.rowcount == 1


def give_transfer_reference(pledge: Pledge) -> str:
    """Give a bank-transfer pledge the reference the funder writes on the transfer
    (``BC<pledge id>-<6 hex digits>``, once; the same one when asked again)."""
    if pledge.transfer_reference is None:
        pledge.transfer_reference = f"BC{pledge.id}-{secrets.token_hex(3).upper()}"
        db.session.flush()
    return pledge.transfer_reference


def record_checkout_session(pledge_id: int, session_id: str) -> None:
    """Remember the Stripe Checkout Session (``cs_…``) made for a card pledge."""
    pledge = db.session.get(Pledge, pledge_id)
    pledge.checkout_session_id = session_id
    db.session.flush()


def _locked(pledge_id: int) -> Pledge:
    pledge = db.session.get(Pledge, pledge_id, with_for_update=True, populate_existing=True)
    if pledge is None:
        raise PledgeError(f"no pledge {pledge_id}")
    return pledge


def mark_received(pledge_id: int, received: Money, *, actor: str, accept_other_amount: bool = False) -> bool:
    """The money arrived (Stripe paid, or the fiscal host confirmed the transfer): hold it.

    Idempotent: a second confirmation (a redelivered event, the success page
    racing the webhook) finds the pledge held and changes nothing; returns
    whether this call moved the money. Raises :class:`PledgeError` when the
    amount differs from the pledge (nothing is held; someone must look),
    unless ``accept_other_amount`` (the fiscal host confirmed what a bank
    transfer actually brought): then the pledge records what arrived as its
    amount, and what was announced in ``pledged_minor``.
    """
    pledge = _locked(pledge_id)
    if pledge.state not in (PledgeState.pending, PledgeState.processing):
        return False
    if received != Money(pledge.amount_minor, pledge.currency):
        if not accept_other_amount or received.currency != pledge.currency or received.amount_minor <= 0:
            raise PledgeError(_("Pledge %(id)s: %(received)s arrived, %(pledged)s was pledged. Nothing is held.",
                                id=pledge.id, received=format_money(received.amount_minor, received.currency),
                                pledged=format_money(pledge.amount_minor, pledge.currency)))
        # The pending figure counted what was announced; from now on the pledge is what arrived.
        _pending_projection(pledge.item_id, pledge.currency, received.amount_minor - pledge.amount_minor)
        audit.record("pledge.other_amount_received", "pledge", pledge.id, actor=actor,
                     details={"pledged_minor": pledge.amount_minor, "received_minor": received.amount_minor,
                              "currency": pledge.currency})
        pledge.pledged_minor, pledge.amount_minor = pledge.amount_minor, received.amount_minor
    ledger.post("pledge_received", f"pledge:{pledge.id}:received", [
        ledger.Line(ledger.account(AccountKind.funder_payments), Money(-pledge.amount_minor, pledge.currency)),
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=pledge.item_id),
                    Money(pledge.amount_minor, pledge.currency)),
    ])
    pledge.state = PledgeState.held
    pledge.held_at = utcnow()
    _pending_projection(pledge.item_id, pledge.currency, -pledge.amount_minor)
    audit.record("pledge.held", "pledge", pledge.id, actor=actor)
    signals.held.send(pledge)
    if pledging_closed(pledge.item):
        # Pledged before the work was done, received after: it goes to the work
        # too (the payouts propose it: signals.held_after_work_done).
        signals.held_after_work_done.send(pledge.item)
    return True


def refund(pledge_id: int, amount_minor: int, *, refund_id: str, actor: str,
           to: AccountKind = AccountKind.refunds) -> bool:
    """Send ``amount_minor`` of the pledge back to its funder (part or all).

    ``refund_id`` names this refund once and for all (the provider's refund
    id, or ours): the same refund applied twice changes nothing, and one the
    provider reported failed (:func:`undo_failed_refund`) is never applied. Under the
    pledge's row lock, so two racing refunds cannot send back more than is
    held. Returns whether this call refunded. Raises :class:`PledgeError`
    when the pledge holds less than asked, or nothing.
    """
    pledge = _locked(pledge_id)
    key = f"refund:{refund_id}"
    if ledger.posted(key) or refund_failed_already(refund_id):
        return False  # applied before, or Stripe said it failed (an older event that still lists it)
    if pledge.state not in (PledgeState.held, PledgeState.partially_refunded, PledgeState.disputed):
        raise PledgeError(_("Pledge %(id)d holds no money to refund (it is %(state)s).", id=pledge.id,
                             state=pledge.state.value))
    if not 0 < amount_minor <= pledge.held_minor:
        raise PledgeError(_("Pledge %(id)d holds %(held)s; %(amount)s cannot be refunded from it.", id=pledge.id,
                             held=format_money(pledge.held_minor, pledge.currency),
                             amount=format_money(amount_minor, pledge.currency)))
    ledger.post("refund" if to is AccountKind.refunds else "dispute_lost", key, [
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=pledge.item_id),
                    Money(-amount_minor, pledge.currency)),
        ledger.Line(ledger.account(to), Money(amount_minor, pledge.currency)),
    ])
    pledge.refunded_minor += amount_minor
    if pledge.refunded_minor == pledge.amount_minor:
        pledge.state = PledgeState.refunded
    elif pledge.state is not PledgeState.disputed or to is AccountKind.disputes:
        # An open dispute stays open (the money left is still contested),
        # unless this is the dispute's own loss: then it is closed.
        pledge.state = PledgeState.partially_refunded
    if pledge.state is PledgeState.refunded:
        pledge.closed_at = utcnow()
    for failure in unresolved_refund_failures(pledge.id) if to is AccountKind.refunds else []:
        failure.resolved_at = utcnow()  # money went back after all: the admin flag is down
    db.session.flush()
    audit.record("pledge.refunded", "pledge", pledge.id, actor=actor,
                 details={"amount_minor": amount_minor, "refund_id": refund_id})
    signals.money_left.send(pledge)
    return True


def refund_expired(now: datetime | None = None) -> list[int]:
    """Refund the rest of every held pledge whose expiry has passed with no payout open for its item.

    (Money of a solved item is proposed as a payout; only if that payout is
    cancelled does it come back at expiry.)

    The money goes back to the funder, never to the platform. Keyed by the
    pledge id, so a second run refunds nothing more. Returns the pledge ids refunded.
    """
    now = now or utcnow()
    due = db.session.scalars(
        select(Pledge.id)
        .join(BacklogItem, BacklogItem.id == Pledge.item_id)
        .where(Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded]),
               Pledge.expires_at <= now,
               ~select(Payout.id).where(Payout.item_id == Pledge.item_id, Payout.open_key.is_not(None)).exists())
        .order_by(Pledge.id)
    ).all()
    return _refund_back(due, reason="expiry", actor="job:refund_expired")


def _refund_back(pledge_ids: list[int], *, reason: str, actor: str) -> list[int]:
    """Send what each pledge holds back through its rail: a Stripe refund for a
    card pledge. A bank-transfer pledge needs the fiscal host's transfer back:
    it is marked due (audit) and shown on the admin page, never refunded on
    paper only. A Stripe outage leaves the pledge for the next run."""
    refunded = []
    for pledge_id in pledge_ids:
        pledge = _locked(pledge_id)
        if not pledge.held_minor or pledge.state is PledgeState.disputed:
            continue
        if db.session.scalar(select(Payout.id).where(Payout.item_id == pledge.item_id,
                                                     Payout.open_key.is_not(None)).limit(1)):
            continue  # a payout was proposed or approved since the pledge was chosen: it is the work's now
        if pledge.rail is not Rail.card or unresolved_refund_failures(pledge.id):
            # A bank transfer goes back by hand; so does a card refund that failed
            # once (the card is closed: trying it again hourly would fail again).
            audit.record("pledge.refund_due", "pledge", pledge.id, actor=actor, details={"reason": reason})
            continue
        try:
            with db.session.begin_nested():
                if refund_through_rail(pledge_id, pledge.held_minor, reason=reason, actor=actor):
                    refunded.append(pledge_id)
        except (PaymentsUnavailable, PledgeError):
            continue
    return refunded


def release_pending(pledge_id: int) -> None:
    """A pledge that will never be paid (failed, cancelled) stops counting as pending."""
    pledge = db.session.get(Pledge, pledge_id)
    pledge.closed_at = utcnow()
    _pending_projection(pledge.item_id, pledge.currency, -pledge.amount_minor)


def check_seen_refunded(pledge: Pledge, seen_refunded_minor: int | None) -> None:
    """Refuse (:class:`PledgeError`) a refund form whose pledge was refunded
    since the page was shown: ``seen_refunded_minor`` is what it had had back
    then (None: no form). A second submission of the same form refunds nothing."""
    if seen_refunded_minor is not None and seen_refunded_minor != pledge.refunded_minor:
        raise PledgeError(_("This pledge was refunded meanwhile; check it again. Nothing was refunded."))


def refund_through_rail(pledge_id: int, amount_minor: int, *, reason: str, actor: str,
                        offline_reference: str | None = None, seen_refunded_minor: int | None = None) -> bool:
    """Send money back the way it came: a Stripe refund for a card pledge, or a
    transfer the fiscal host records (``offline_reference``) for a bank one.

    The refund is keyed by the pledge and how much it has refunded so far, so
    a retry of the same request refunds once; ``seen_refunded_minor`` (see
    :func:`check_seen_refunded`) stops a second submission of a form. Raises
    :class:`PledgeError`, or ``PaymentsUnavailable`` when Stripe cannot be
    reached (nothing changes).
    """
    pledge = _locked(pledge_id)
    check_seen_refunded(pledge, seen_refunded_minor)
    if pledge.state not in (PledgeState.held, PledgeState.partially_refunded):
        raise PledgeError(_("Pledge %(id)d holds no money to refund (it is %(state)s).", id=pledge.id,
                             state=pledge.state.value))
    if not 0 < amount_minor <= pledge.held_minor:
        raise PledgeError(_("Pledge %(id)s holds %(held)s; %(amount)s cannot be refunded from it.", id=pledge.id,
                            held=format_money(pledge.held_minor, pledge.currency),
                            amount=format_money(amount_minor, pledge.currency)))
    request_key = f"pledge-{pledge.id}-refund-after-{pledge.refunded_minor}"
    failures = db.session.scalar(select(func.count()).where(RefundFailure.pledge_id == pledge.id))
    if failures:
        # A failed refund gave the money back: the same key would replay the failed refund.
        request_key += f"-retry-{failures}"
    if pledge.rail is Rail.card:
        if not pledge.payment_intent_id:
            raise PledgeError(_("Pledge %(id)d has no Stripe payment to refund.", id=pledge.id))
        refund_id = stripe_client.create_refund(pledge.payment_intent_id, Money(amount_minor, pledge.currency),
                                                idempotency_key=request_key, pledge_id=pledge.id)
    else:
        if not offline_reference:
            raise PledgeError(_("A bank-transfer refund needs the reference of the transfer back."))
        refund_id = f"offline:{pledge.id}:{offline_reference}"
    moved = refund(pledge.id, amount_minor, refund_id=refund_id, actor=actor)
    audit.record("pledge.refund_requested", "pledge", pledge.id, actor=actor,
                 details={"amount_minor": amount_minor, "reason": reason, "refund_id": refund_id})
    return moved


def self_refund_refusal(pledge: Pledge) -> str | None:
    """Why the funder cannot take ``pledge`` back by themselves now (for the
    person), or None when they can: a card pledge still holding money, on an
    item where no claim is approved and no payout is approved."""
    if pledge.state is PledgeState.released:
        return _("This pledge was paid out; only the fiscal host can refund it now: write to %(host)s.",
                 host=fiscal_host_contact())
    if not pledge.held_minor or pledge.state is PledgeState.disputed:
        return _("This pledge holds nothing you can take back yourself.")
    if pledge.rail is not Rail.card:
        return _("Bank transfers are refunded by the fiscal host: write to %(host)s with your pledge reference.",
                 host=fiscal_host_contact())
    if unresolved_refund_failures(pledge.id):
        return _("Your last refund could not reach your card. The fiscal host will contact you to send the "
                 "money back another way.")
    if pledge.item.closed_as_not_planned:
        return None  # nobody will be paid for it: the funder may take it back at once
    if db.session.scalar(select(Claim.id).where(
            Claim.item_id == pledge.item_id,
            Claim.state.in_([*HOLDING_CLAIM_STATES, ClaimState.completed])).limit(1)):
        return _("A claim on this item is approved: someone is doing the work. To be refunded, write to %(host)s.",
                 host=fiscal_host_contact())
    if db.session.scalar(select(Payout.id).where(
            Payout.item_id == pledge.item_id, Payout.currency == pledge.currency,
            Payout.state.in_([*OPEN_PAYOUT_STATES, PayoutState.executing])).limit(1)):
        return _("The work is done and its payout is under way. To be refunded, write to %(host)s.",
                 host=fiscal_host_contact())
    return None


def self_service_refund(pledge_id: int, *, actor: str) -> bool:
    """The funder takes back what a card pledge still holds, while nobody has started on the item.

    Refused (:class:`PledgeError`, see :func:`self_refund_refusal`) once a
    claim on the item is approved, or a payout of it is approved, or the
    money was paid out: from then on only an admin refunds. Checked under
    the pledge's row lock, which payout approval also takes, so a refund and
    an approval cannot both pass.
    """
    pledge = _locked(pledge_id)
    refusal = self_refund_refusal(pledge)
    if refusal is not None:
        raise PledgeError(refusal)
    return refund_through_rail(pledge.id, pledge.held_minor, reason="self-service", actor=actor)


def confirm_transfer(pledge_id: int, received: Money, *, reference: str, received_on, actor: str,
                     accept_other_amount: bool = False) -> bool:
    """The fiscal host confirms an offline transfer: the pledge is held.

    ``received`` is what actually arrived; when it differs from the pledge
    (more or less), the fiscal host confirms it with ``accept_other_amount``
    and the pledge records it (see :func:`mark_received`); to send it back,
    the admin refunds the pledge afterwards. ``received_on`` (a ``date``)
    may not be in the future (UTC). Returns whether this call held it (False:
    confirmed already). Raises :class:`PledgeError` for another amount not
    confirmed, a future date, a non-transfer pledge, one cancelled (unpaid)
    before the money came, or the funder confirming their own pledge.
    """
    pledge = _locked(pledge_id)
    if actor == f"user:{pledge.funder_id}":
        raise PledgeError(_("Pledge %(id)d is your own: another admin confirms its money.", id=pledge.id))
    if pledge.rail is not Rail.bank_transfer:
        raise PledgeError(_("Pledge %(id)d is not a bank transfer.", id=pledge.id))
    if isinstance(received_on, str):
        try:
            received_on = date.fromisoformat(received_on)
        except ValueError:
            raise PledgeError(_("Give the date the money arrived.")) from None
    if received_on > utcnow().date():
        raise PledgeError(_("The date the money arrived cannot be in the future."))
    if pledge.state in (PledgeState.cancelled, PledgeState.failed):
        # Cancelled as unpaid (the funder, or the cron after 30 days) before the
        # money came: it cannot be held (held money of a cancelled pledge has no
        # way out). Was: nothing held, and the page said "held".
        raise PledgeError(_("Pledge %(id)s was cancelled before its money arrived: nothing is held. Send the "
                            "transfer back, or ask the funder to pledge again.", id=pledge.id))
    moved = mark_received(pledge.id, received, actor=actor, accept_other_amount=accept_other_amount)
    if moved:
        audit.record("pledge.transfer_confirmed", "pledge", pledge.id, actor=actor,
                     details={"reference": reference, "received_on": str(received_on)})
    return moved


NOT_PLANNED_WINDOW = timedelta(days=14)


def refund_not_planned(now: datetime | None = None, window: timedelta = NOT_PLANNED_WINDOW) -> list[int]:
    """Refund the pledges of items closed for a reason that pays nobody
    (:func:`marketplace.backlog.queries.not_done_condition`: not planned,
    duplicate, moved, unknown) once the policy window has passed since the
    close, of items deleted on the forge at once (a refund Stripe could not
    take then is retried here), and of items the forge has kept private
    (confidential) for longer than the window.

    Funders can take their money back at once (self-service); after the
    window, what is still held goes back to them. Keyed by the pledge id.
    Returns the pledge ids refunded.
    """
    now = now or utcnow()
    due = db.session.scalars(
        select(Pledge.id)
        .join(BacklogItem, BacklogItem.id == Pledge.item_id)
        .where(Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded]),
               or_(BacklogItem.deleted_at.is_not(None),
                   and_(not_done_condition(), BacklogItem.forge_closed_at <= now - window),
                   BacklogItem.private_since <= now - window))
        .order_by(Pledge.id)
    ).all()
    return _refund_back(due, reason="not planned", actor="job:refund_not_planned")


def refund_item_now(item: BacklogItem, *, reason: str, actor: str) -> list[int]:
    """Refund at once what every pledge of ``item`` holds (the item ended on
    the forge: deleted, or kept private past the window), each through its
    rail (:func:`_refund_back`: a bank transfer is marked due for the fiscal
    host). Returns the pledge ids refunded; a pledge Stripe could not refund
    now is left for the hourly :func:`refund_not_planned`."""
    due = db.session.scalars(select(Pledge.id).where(
        Pledge.item_id == item.id, Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded]))
        .order_by(Pledge.id)).all()
    return _refund_back(list(due), reason=reason, actor=actor)


def offer_refunds(item: BacklogItem) -> int:
    """Tell every funder whose money an item closed without the work holds
    (not planned, duplicate, moved, unknown) that they can take it back now
    (and that it comes back by itself after the window); when the forge says
    where the work went, that they may move their pledge there instead (their
    choice: nothing moves by itself). Mailed after commit. Returns the number
    of funders told."""
    rows = db.session.execute(
        select(Pledge, User).join(User, User.id == Pledge.funder_id)
        .where(Pledge.item_id == item.id,
               Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded]))
        .order_by(Pledge.id)
    ).all()
    target = work_went_to(item)
    for pledge, funder in rows:
        language = mail.language_of(funder)
        with force_locale(language):
            why = reason_text(item.close_reason)
        mail.send("pledge_refund_offered", funder.email, language=language, funder=funder, item=item, why=why,
                  link=url_for_public("pledges.show", pledge_id=pledge.id), days=NOT_PLANNED_WINDOW.days,
                  target=target if target is not None and not target.work_done else None,
                  not_planned=item.close_reason is CloseReason.not_planned)
    return len(rows)


def tell_funders_refunded(item: BacklogItem, why: str | Callable[[], str]) -> int:
    """Tell each funder whose pledge ``item`` still holds that it is being
    refunded now because the item ``why`` (a card pledge by Stripe; a bank
    transfer by the fiscal host). ``why`` may be a function giving the phrase,
    called in each funder's language. Mailed after commit. Returns the number told."""
    rows = db.session.execute(
        select(Pledge, User).join(User, User.id == Pledge.funder_id)
        .where(Pledge.item_id == item.id,
               Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded]))
        .order_by(Pledge.id)
    ).all()
    for pledge, funder in rows:
        language = mail.language_of(funder)
        with force_locale(language):
            phrase = why() if callable(why) else why
        mail.send("pledge_refunded", funder.email, language=language,
                  funder=funder, item=item, pledge=pledge, why=phrase,
                  link=url_for_public("pledges.show", pledge_id=pledge.id))
    return len(rows)


# Refunds that fail after they were made.


def refund_failed_already(refund_id: str) -> bool:
    """Whether the provider reported the refund ``refund_id`` failed (it is never applied again)."""
    return db.session.scalar(select(RefundFailure.id).where(RefundFailure.refund_id == refund_id)) is not None


def unresolved_refund_failures(pledge_id: int) -> list[RefundFailure]:
    """The pledge's failed refunds that no later refund has made good (the admin's flag)."""
    return list(db.session.scalars(select(RefundFailure).where(
        RefundFailure.pledge_id == pledge_id, RefundFailure.resolved_at.is_(None)).order_by(RefundFailure.id)))


def _sent_back_by(refund_id: str) -> int:
    """Minor units that the refund ``refund_id`` booked as sent back to the funder
    (the ``refunds`` account of its transaction ``refund:<id>``; 0 when it was
    never applied). Whether it came out of escrow (before payout) or out of the
    commons' funds and the payout (after payout), this is what Stripe gives
    back to the commons' balance when the refund fails."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.idempotency_key == f"refund:{refund_id}",
               LedgerAccount.kind == AccountKind.refunds)))


REFUND_ACTIONS = ("pledge.refunded", "pledge.refunded_after_payout", "pledge.refunded_elsewhere_after_payout")


def _refund_belongs_to(pledge_id: int, refund_id: str) -> bool:
    """Whether the refund ``refund_id`` was applied to pledge ``pledge_id`` (its audit event names it)."""
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action.in_(REFUND_ACTIONS), AuditEvent.object_type == "pledge",
        AuditEvent.object_id == str(pledge_id)))
    return any((event.details or {}).get("refund_id") == refund_id for event in events)


def undo_failed_refund(pledge_id: int, refund_id: str, *, reason: str | None, actor: str) -> bool:
    """Stripe reports the refund ``refund_id`` failed (e.g. the card was closed):
    its money came back to the commons' balance. A pledge that still holds
    money (held, partially refunded, refunded, disputed) holds it in the
    item's escrow again; one paid out meanwhile (``released``) cannot take it
    back into an escrow that was paid out, so it is booked where it is: in
    the commons' funds, owed to the funder (flagged for the fiscal host to
    send it back another way).

    Once per refund id, under the pledge's row lock: the refund's amount (what
    its transaction booked as sent to the funder) goes from ``refunds`` back to
    escrow or the commons' funds (one ledger transaction keyed
    ``refund:<id>:failed``), ``refunded_minor`` drops by it and a refunded
    pledge is held (or partially refunded) again. Before, a paid-out pledge's
    failure was only flagged, and the ledger kept saying the funder had the
    money. A failure known before the refund itself is recorded too, so that
    the refund is never applied later. The admin sees a flag on
    ``/admin/pledges`` and the funder gets an e-mail
    (``templates/email/refund_failed/``). Returns whether this call
    recorded the failure (False: known already).
    """
    pledge = _locked(pledge_id)
    if refund_failed_already(refund_id):
        return False
    undone = _sent_back_by(refund_id)
    if undone and not _refund_belongs_to(pledge.id, refund_id):
        # Applied to another pledge (an object whose metadata names the wrong
        # pledge): giving it back here would hand one funder another's money.
        raise PledgeError(f"refund {refund_id} was not applied to pledge {pledge.id}")
    holding = pledge.state in (PledgeState.held, PledgeState.partially_refunded, PledgeState.refunded,
                               PledgeState.disputed)
    db.session.add(RefundFailure(pledge_id=pledge.id, refund_id=refund_id, amount_minor=undone,
                                 reason=(reason or "")[:100] or None))
    if undone:
        back_to = (ledger.account(AccountKind.item_escrow, item_id=pledge.item_id) if holding
                   else ledger.account(AccountKind.commons_funds))
        ledger.post("refund_failed", f"refund:{refund_id}:failed", [
            ledger.Line(ledger.account(AccountKind.refunds), Money(-undone, pledge.currency)),
            ledger.Line(back_to, Money(undone, pledge.currency)),
        ], memo=None if holding else "refund failed after payout: owed to the funder")
        pledge.refunded_minor -= undone
        if holding and pledge.state is not PledgeState.disputed:
            pledge.state = PledgeState.partially_refunded if pledge.refunded_minor else PledgeState.held
        if holding:
            pledge.closed_at = None
    db.session.flush()
    audit.record("pledge.refund_failed", "pledge", pledge.id, actor=actor,
                 details={"refund_id": refund_id, "amount_minor": undone, "reason": reason})
    if undone:
        _tell_funder_refund_failed(pledge, undone)
    return True


def _tell_funder_refund_failed(pledge: Pledge, amount_minor: int) -> None:
    if not pledge.funder.email:
        return
    mail.send("refund_failed", pledge.funder.email,
              language=mail.language_of(pledge.funder),
              pledge=pledge, amount_minor=amount_minor,
              link=url_for_public("pledges.show", pledge_id=pledge.id))


# Pledges never paid.


def unpaid_lifetime(rail: Rail) -> timedelta:
    """How long a pledge may wait for its money before the cron cancels it:
    ``PLEDGE_UNPAID_CARD_HOURS`` (default 24, Stripe Checkout's own longest
    session) for a card, ``PLEDGE_UNPAID_TRANSFER_DAYS`` (default 30) for a bank transfer."""
    config = current_app.config
    if rail is Rail.card:
        return timedelta(hours=config.get("PLEDGE_UNPAID_CARD_HOURS", 24))
    return timedelta(days=config.get("PLEDGE_UNPAID_TRANSFER_DAYS", 30))


def cancel_unpaid(pledge_id: int, *, actor: str) -> bool:
    """Cancel a pledge whose money never came (the funder's button, an expired
    Checkout, the cron): it stops counting as awaiting payment.

    Only a ``pending`` pledge: one whose asynchronous payment is on its way
    (``processing``) waits for Stripe's answer. A card pledge's Checkout
    Session is expired at Stripe first, so that nobody can pay it any more;
    Stripe refuses when the funder paid first, and then nothing is cancelled
    (the payment's events hold the pledge). Returns whether this call
    cancelled it. Raises :class:`PledgeError` (paid already) or
    ``PaymentsUnavailable`` (Stripe could not be asked; nothing changed).
    """
    pledge = _locked(pledge_id)
    if pledge.state is not PledgeState.pending:
        return False
    if pledge.rail is Rail.card and pledge.checkout_session_id:
        session_obj = stripe_client.expire_checkout_session(pledge.checkout_session_id)
        if session_obj.get("status") == "complete":
            raise PledgeError(_("This pledge was paid already; the payment is being confirmed."))
    if not transition(pledge.id, PledgeState.cancelled):
        return False
    release_pending(pledge.id)
    audit.record("pledge.cancelled", "pledge", pledge.id, actor=actor)
    return True


def expire_unpaid(now: datetime | None = None) -> list[int]:
    """Cron: cancel every pledge still ``pending`` after :func:`unpaid_lifetime`
    of its rail. A Stripe outage or a session paid at the last minute leaves
    the pledge for the next run. Returns the pledge ids cancelled."""
    now = now or utcnow()
    due = db.session.scalars(select(Pledge.id).where(
        Pledge.state == PledgeState.pending,
        ((Pledge.rail == Rail.card) & (Pledge.created_at <= now - unpaid_lifetime(Rail.card)))
        | ((Pledge.rail == Rail.bank_transfer) & (Pledge.created_at <= now - unpaid_lifetime(Rail.bank_transfer))),
    ).order_by(Pledge.id)).all()
    cancelled = []
    for pledge_id in due:
        try:
            with db.session.begin_nested():
                if cancel_unpaid(pledge_id, actor="job:expire_unpaid"):
                    cancelled.append(pledge_id)
        except (PaymentsUnavailable, PledgeError):
            continue
    return cancelled


def awaiting_payment(item_id: int) -> int:
    """How many pledges to the item wait for their money (pending or processing):
    the only public trace of unpaid pledges (their amounts never show)."""
    return db.session.scalar(select(func.count()).where(
        Pledge.item_id == item_id, Pledge.state.in_([PledgeState.pending, PledgeState.processing])))


def awaiting_payment_counts(item_ids: list[int]) -> dict[int, int]:
    """:func:`awaiting_payment` of many items in one query: item id → count
    (items with none are left out)."""
    if not item_ids:
        return {}
    rows = db.session.execute(select(Pledge.item_id, func.count()).where(
        Pledge.item_id.in_(item_ids), Pledge.state.in_([PledgeState.pending, PledgeState.processing]))
        .group_by(Pledge.item_id)).all()
    return {item_id: count for item_id, count in rows}


def move_refusal(pledge: Pledge) -> str | None:
    """Why ``pledge`` cannot be moved to where its item's work went (for the
    person), or None when it can: a pledge still holding undisputed money, on
    an item closed without the work whose forge (or a maintainer) names the
    item the work went to, which still takes pledges."""
    if not pledge.held_minor or pledge.state is PledgeState.disputed:
        return _("This pledge holds nothing that can be moved.")
    if not pledge.item.closed_as_not_planned or pledge.item.deleted_at is not None:
        return _("Only a pledge on an item closed as moved or duplicate can be moved.")
    target = work_went_to(pledge.item)
    if target is None:
        return _("The forge does not say where this item's work went.")
    if pledging_closed(target) or target.hidden:
        return _("The item the work went to takes no pledges.")
    return None


def move_to_target(pledge_id: int, *, funder_id: int, actor: str) -> BacklogItem:
    """The funder moves what ``pledge_id`` holds to the item its item's work
    went to (GitLab ``moved_to_id`` / ``duplicated_to_id``, or a maintainer's
    link), instead of a refund.

    Under the pledge's row lock: one ledger transaction keyed by the pledge
    and its item (escrow of the old item −held, of the target +held); the
    pledge then belongs to the target. Returns the target item. Raises
    :class:`PledgeError` (see :func:`move_refusal`) and changes nothing.
    """
    pledge = _locked(pledge_id)
    if pledge.funder_id != funder_id:
        raise PledgeError(_("Only the funder can move this pledge."))
    refusal = move_refusal(pledge)
    if refusal is not None:
        raise PledgeError(refusal)
    source, target = pledge.item, work_went_to(pledge.item)
    money = Money(pledge.held_minor, pledge.currency)
    _transaction, created = ledger.post("pledge_moved", f"pledge:{pledge.id}:moved-from:{source.id}", [
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=source.id),
                    Money(-money.amount_minor, money.currency)),
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=target.id), money),
    ], memo=f"pledge {pledge.id} moved to item {target.id}")
    if created:
        pledge.item_id = target.id
        db.session.flush()
        db.session.expire(pledge, ["item"])
        audit.record("pledge.moved", "pledge", pledge.id, actor=actor,
                     details={"from_item": source.id, "to_item": target.id, "amount_minor": money.amount_minor})
        signals.money_left.send(pledge)
    return target
