"""Stripe webhook events that move pledge money.

Follows Stripe's "Fulfill orders" and "Refund and cancel payments" guides:
``checkout.session.completed`` with ``payment_status`` ``paid`` holds the
money, ``unpaid`` (an asynchronous method such as SEPA debit) leaves the
pledge processing until ``checkout.session.async_payment_succeeded`` or
``_failed``; ``checkout.session.expired`` cancels a pledge never paid;
``charge.refunded`` carries the cumulative ``amount_refunded`` and each
refund by its own id; ``refund.failed`` / ``charge.refund.updated`` (status
``failed``) give a refund's money back to escrow.

Stripe does not order its deliveries ("Event ordering" in the webhooks
guide): any event of a pledge's life may come first. So every object is
matched to its pledge by what Stripe carries over from our Checkout Session
(the pledge id in ``metadata`` / ``client_reference_id``; charges carry
their PaymentIntent's metadata), else by the PaymentIntent id, else by
asking Stripe for the PaymentIntent (:func:`find_pledge`). An event about a
payment that is not in our books yet brings it in from the charge (a
succeeded charge is proof of payment, :func:`_ensure_held`), and holding a
pledge first reads the charge's refunds and disputes (:func:`_hold`), so a
completion arriving after a full refund leaves the pledge refunded. What
still cannot be matched raises :class:`NotMatchedYet`: the delivery waits
and is tried again. Every handler is idempotent (refunds, failures and
disputes by their own ids) and only moves a pledge forward.
"""
from __future__ import annotations

from sqlalchemy import select

from marketplace.audit import service as audit
from marketplace.audit.models import AuditEvent
from marketplace.extensions import db
from marketplace.ledger.models import AccountKind
from marketplace.money import Money, from_stripe_amount
from marketplace.payments import fund_events, pool_events, stripe_client
from marketplace.payments.balance import BalanceError, movements
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.after_payout import (
    on_transfer_reversed,
    record_dispute_fees,
    record_refund_after_payout_elsewhere,
)
from marketplace.payouts.service import (
    on_account_updated,
    on_dispute_closed,
    on_pledge_disputed,
)
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.webhooks import schemas
from marketplace.webhooks.models import DeliveryStatus, NotMatchedYet, WebhookDelivery

ACTOR = "stripe"
Outcome = tuple[DeliveryStatus, str]
UNPAID = (PledgeState.pending, PledgeState.processing)


class PaymentMismatch(ValueError):
    """The object names a pledge whose recorded PaymentIntent is another one."""


class _Refused(ValueError):
    """A refund that cannot be applied as Stripe reports it (another currency, no amount)."""


class NotAPledge(LookupError):
    """Stripe says the payment is not a pledge's (its PaymentIntent carries no
    pledge id); ``pool_id`` when its metadata names a matching pool instead."""

    def __init__(self, message: str, pool_id: int | None = None):
        super().__init__(message)
        self.pool_id = pool_id


def _pledge_id(obj: dict) -> int | None:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    value = metadata.get("pledge_id")
    if value is None and obj.get("object") in (None, "checkout.session"):
        value = obj.get("client_reference_id")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18 \
            and 0 < int(value) <= schemas.MAX_PLEDGE_ID:
        return int(value)
    return None  # not one of our pledge ids (ours fit a PostgreSQL integer)


def _intent_id(obj: dict) -> str | None:
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return intent if isinstance(intent, str) and intent else None


def find_pledge(obj: dict) -> Pledge:
    """The pledge a Stripe object (Checkout Session, PaymentIntent, charge,
    refund, dispute) belongs to, whatever arrived before it.

    By the pledge id in ``metadata`` (or a session's ``client_reference_id``),
    else the PaymentIntent id recorded on the pledge, else a session's own id,
    else the PaymentIntent's metadata read from Stripe (``GET
    /v1/payment_intents/{id}``). Learns the PaymentIntent id on the way.
    Raises :class:`NotMatchedYet` (keep the delivery, try again),
    :class:`NotAPledge`, :class:`PaymentMismatch`, or ``PaymentsUnavailable``.
    """
    pledge_id, intent = _pledge_id(obj), _intent_id(obj)
    pledge = db.session.get(Pledge, pledge_id) if pledge_id is not None else None
    if pledge is None and intent:
        pledge = db.session.scalar(select(Pledge).where(Pledge.payment_intent_id == intent))
    if pledge is None and obj.get("object") == "checkout.session" and isinstance(obj.get("id"), str):
        pledge = db.session.scalar(select(Pledge).where(Pledge.checkout_session_id == obj["id"]))
    if pledge is None and pledge_id is None and intent and stripe_client.configured():
        paid = stripe_client.retrieve_payment_intent(intent)
        pledge_id = _pledge_id(paid)
        if pledge_id is None:
            raise NotAPledge(f"{intent} carries no pledge id: not a pledge's payment",
                             pool_id=pool_events.named_pool_id(paid))
        pledge = db.session.get(Pledge, pledge_id)
    if pledge is None:
        what = obj.get("id") if isinstance(obj.get("id"), str) else "object"
        raise NotMatchedYet(f"no pledge for {obj.get('object') or 'object'} {what}"
                            + (f" (pledge id {pledge_id})" if pledge_id is not None else "")
                            + (f" ({intent})" if intent else "") + " yet")
    if obj.get("object") == "checkout.session" and pledge.checkout_session_id \
            and obj.get("id") != pledge.checkout_session_id:
        # Another Checkout naming this pledge id (say, a test deployment on the same Stripe account).
        raise PaymentMismatch(f"session {obj.get('id')} names pledge {pledge.id}, whose Checkout is "
                              f"{pledge.checkout_session_id}")
    if intent:
        if pledge.payment_intent_id is None:
            other = db.session.scalar(select(Pledge.id).where(Pledge.payment_intent_id == intent))
            if other is not None:
                # One payment is one pledge's: the pledge id it names is not the pledge that paid.
                raise PaymentMismatch(f"{intent} names pledge {pledge.id}, but it is pledge {other}'s payment")
            pledge.payment_intent_id = intent
            db.session.flush()
        elif pledge.payment_intent_id != intent:
            raise PaymentMismatch(f"{intent} names pledge {pledge.id}, whose payment is {pledge.payment_intent_id}")
    return pledge


def _state(pledge: Pledge) -> PledgeState:
    return db.session.scalar(select(Pledge.state).where(Pledge.id == pledge.id))


def _latest_charge(pledge: Pledge) -> dict | None:
    """The payment's latest charge as Stripe has it now (None: Stripe not
    configured, or no payment yet). Raises ``PaymentsUnavailable``."""
    if not pledge.payment_intent_id or not stripe_client.configured():
        return None
    charge = stripe_client.retrieve_payment_intent(pledge.payment_intent_id).get("latest_charge")
    return charge if isinstance(charge, dict) else None


def _hold(pledge: Pledge, received: Money, charge: dict | None) -> list[str]:
    """Hold the pledge's money, then apply what the charge says happened since
    (refunds by id, disputes) in the same transaction: nobody ever sees money
    held that Stripe has refunded. Returns notes for the outcome."""
    moved = pledges.mark_received(pledge.id, received, actor=ACTOR)
    state = _state(pledge)
    notes = [f"pledge {pledge.id} held" if moved else f"pledge {pledge.id} was held already"
             if state is PledgeState.held else f"pledge {pledge.id} is {state.value}: nothing to hold"]
    if charge is not None:
        notes += _apply_charge(pledge, charge)
    return notes


def _charge_paid(charge: dict) -> bool:
    return charge.get("paid") is True and charge.get("status") == "succeeded"


def _ensure_held(pledge: Pledge, charge: dict | None) -> list[str]:
    """An event about a payment (refund, dispute) that is not in our books yet:
    hold it first from its charge (the event's, or Stripe's now). Raises
    :class:`NotMatchedYet` when no charge shows it paid yet."""
    if _state(pledge) not in UNPAID:
        return []
    charge = charge if charge is not None and _charge_paid(charge) else _latest_charge(pledge)
    if charge is None or not _charge_paid(charge) or not isinstance(charge.get("amount"), int) \
            or not isinstance(charge.get("currency"), str):
        raise NotMatchedYet(f"pledge {pledge.id}: its payment is not received yet")
    return _hold(pledge, from_stripe_amount(charge["amount"], charge["currency"]), None)


def _session_outcome(pledge: Pledge, session_obj: dict) -> Outcome:
    amount, currency = session_obj.get("amount_total"), session_obj.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return DeliveryStatus.failed, "the session carries no amount_total/currency"
    state = _state(pledge)
    if state in (PledgeState.cancelled, PledgeState.failed):
        return DeliveryStatus.failed, (f"pledge {pledge.id} is {state.value} but Stripe took its payment: "
                                       "refund it in Stripe or ask a developer")
    # Before holding, read the charge (refunded or disputed meanwhile?).
    charge = _latest_charge(pledge) if state in UNPAID else None
    try:
        return DeliveryStatus.processed, "; ".join(_hold(pledge, from_stripe_amount(amount, currency), charge))
    except _Refused as exc:
        return DeliveryStatus.failed, str(exc)


def checkout_completed(event: dict, delivery: WebhookDelivery) -> Outcome:
    session_obj = event["data"]["object"]
    pledge = find_pledge(session_obj)
    if session_obj.get("payment_status") in ("paid", "no_payment_required"):
        return _session_outcome(pledge, session_obj)
    moved = pledges.transition(pledge.id, PledgeState.processing)
    return DeliveryStatus.processed, (
        f"pledge {pledge.id} processing (payment not settled yet)" if moved else f"pledge {pledge.id} unchanged")


def async_payment_succeeded(event: dict, delivery: WebhookDelivery) -> Outcome:
    return _session_outcome(find_pledge(event["data"]["object"]), event["data"]["object"])


def async_payment_failed(event: dict, delivery: WebhookDelivery) -> Outcome:
    pledge = find_pledge(event["data"]["object"])
    moved = pledges.transition(pledge.id, PledgeState.failed)
    if moved:
        pledges.release_pending(pledge.id)
    return DeliveryStatus.processed, f"pledge {pledge.id} failed" if moved else f"pledge {pledge.id} unchanged"


def checkout_expired(event: dict, delivery: WebhookDelivery) -> Outcome:
    """The funder left the Checkout unpaid until it expired: the pending pledge is cancelled."""
    pledge = find_pledge(event["data"]["object"])
    moved = pledges.transition(pledge.id, PledgeState.cancelled)
    if moved:
        pledges.release_pending(pledge.id)
        audit.record("pledge.cancelled", "pledge", pledge.id, actor=ACTOR, details={"reason": "checkout expired"})
    return DeliveryStatus.processed, (
        f"pledge {pledge.id} cancelled (checkout expired)" if moved else f"pledge {pledge.id} unchanged")


def _refunds_of(pledge: Pledge, charge: dict) -> list[dict]:
    refunds = (charge.get("refunds") or {}).get("data") if isinstance(charge.get("refunds"), dict) else None
    if not isinstance(refunds, list) or (charge.get("refunds") or {}).get("has_more"):
        # Newer API versions leave refunds out of the charge: ask Stripe for them.
        refunds = stripe_client.list_refunds(pledge.payment_intent_id) if pledge.payment_intent_id else []
    return sorted((r for r in refunds if isinstance(r, dict)),
                  key=lambda r: (r.get("created") or 0, str(r.get("id") or "")))


def _apply_refund(pledge: Pledge, refund: dict, currency: str | None) -> tuple[str | None, str | None]:
    """Apply one refund by its own id and status: (applied note, refused note)."""
    refund_id, status = refund.get("id"), refund.get("status")
    if not isinstance(refund_id, str):
        return None, str(refund_id)
    if status in ("failed", "canceled"):
        reason = refund.get("failure_reason") if isinstance(refund.get("failure_reason"), str) else status
        moved = pledges.undo_failed_refund(pledge.id, refund_id, reason=reason, actor=ACTOR)
        return (f"refund {refund_id} failed: back in escrow" if moved else None), None
    if status not in (None, "succeeded", "pending"):
        return None, None
    if not isinstance(refund.get("amount"), int):
        return None, refund_id
    amount = from_stripe_amount(refund["amount"], refund.get("currency") or currency or "")
    if amount.currency != pledge.currency:
        return None, f"{refund_id} ({amount.currency}, pledge in {pledge.currency})"
    if _state(pledge) is PledgeState.released:
        # Refunded in Stripe's dashboard after the money was paid out: the
        # commons covered it (recorded once per refund id, flagged for an admin).
        moved = record_refund_after_payout_elsewhere(pledge.id, amount.amount_minor, refund_id=refund_id)
        return (refund_id if moved else None), None
    moved = pledges.refund(pledge.id, amount.amount_minor, refund_id=refund_id, actor=ACTOR)
    return (refund_id if moved else None), None


def _apply_charge(pledge: Pledge, charge: dict) -> list[str]:
    """Everything a charge says about the pledge's money: each refund by id, then its disputes."""
    applied, refused = [], []
    for refund in _refunds_of(pledge, charge):
        note, problem = _apply_refund(pledge, refund, charge.get("currency"))
        if note:
            applied.append(note)
        if problem:
            refused.append(problem)
    if refused:
        raise _Refused(f"pledge {pledge.id}: refunds refused for a person to check: {', '.join(refused)}")
    notes = [f"pledge {pledge.id}: refunds {', '.join(applied)} applied"] if applied else []
    if charge.get("disputed") is True and pledge.payment_intent_id and stripe_client.configured():
        for dispute in stripe_client.list_disputes(pledge.payment_intent_id):
            notes.append(_apply_dispute(pledge, dispute)[1])
    return notes


def charge_refunded(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Apply each refund of the charge by its own id (``amount_refunded`` is cumulative).

    A refund seen before changes nothing, so the same event twice, or an older
    event after a newer one, refunds each unit once. A charge whose payment is
    not held yet (this event came first) holds it first.
    """
    charge = event["data"]["object"]
    pledge = find_pledge(charge)
    try:
        notes = _ensure_held(pledge, charge) + _apply_charge(pledge, charge)
    except _Refused as exc:
        return DeliveryStatus.failed, str(exc)
    return DeliveryStatus.processed, "; ".join(notes) or f"pledge {pledge.id}: no new refund"


def refund_updated(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``refund.failed``, ``refund.updated``, ``charge.refund.updated``: apply
    the refund as its status says now (a failed one gives its money back, once)."""
    refund = event["data"]["object"]
    pledge = find_pledge(refund)
    notes = _ensure_held(pledge, None)
    note, problem = _apply_refund(pledge, refund, None)
    if problem:
        return DeliveryStatus.failed, f"pledge {pledge.id}: refund refused for a person to check: {problem}"
    notes.append(note or f"pledge {pledge.id}: refund {refund.get('id')} {refund.get('status')}, nothing new")
    return DeliveryStatus.processed, "; ".join(notes)


def _apply_dispute(pledge: Pledge, dispute: dict) -> Outcome:
    """A dispute as its status says: closed (won, lost) or open."""
    if dispute.get("status") in ("won", "lost", "warning_closed"):
        return _dispute_closed(pledge, dispute)
    return _dispute_opened(pledge, dispute)


def _dispute_event(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``charge.dispute.created`` / ``.closed`` (and ``.updated``): the pledge's
    payment is brought in first if this came before it, then the dispute applies."""
    dispute = event["data"]["object"]
    pledge = find_pledge(dispute)
    notes = _ensure_held(pledge, None)
    status, outcome = _apply_dispute(pledge, dispute)
    return status, "; ".join([*notes, outcome])


dispute_created = dispute_closed = _dispute_event


def _dispute_opened(pledge: Pledge, dispute: dict) -> Outcome:
    """A chargeback opened: the pledge is disputed (its money stays in escrow, not payable)."""
    if _dispute_closed_already(pledge.id, dispute.get("id")):
        return DeliveryStatus.ignored, f"dispute {dispute.get('id')} on pledge {pledge.id} was closed already"
    moved = pledges.transition(pledge.id, PledgeState.disputed)
    if moved:
        on_pledge_disputed(pledge.id)
    return DeliveryStatus.processed, f"pledge {pledge.id} disputed" if moved else f"pledge {pledge.id} unchanged"


def _dispute_closed_already(pledge_id: int, dispute_id) -> bool:
    """Whether ``charge.dispute.closed`` for ``dispute_id`` was applied to the pledge
    (a late or replayed ``created`` must not open it again)."""
    if not isinstance(dispute_id, str):
        return False
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "pledge.dispute_closed", AuditEvent.object_type == "pledge",
        AuditEvent.object_id == str(pledge_id)))
    return any((event.details or {}).get("dispute") == dispute_id for event in events)


def _dispute_closed(pledge: Pledge, dispute: dict) -> Outcome:
    """Won: back to held. Lost: the disputed amount leaves escrow as a loss, exactly once."""
    if dispute.get("status") in ("won", "lost") and isinstance(dispute.get("id"), str) \
            and not _dispute_closed_already(pledge.id, dispute["id"]):
        audit.record("pledge.dispute_closed", "pledge", pledge.id, actor=ACTOR,
                     details={"dispute": dispute["id"], "status": dispute["status"]})
    if dispute.get("status") == "won":
        # Won: the disputed money came back; what Stripe kept of its fees (the
        # fee of each balance transaction, once by id) is still the commons' cost.
        try:
            if isinstance(dispute.get("id"), str):
                record_dispute_fees(pledge.currency, dispute.get("balance_transactions"), dispute_id=dispute["id"])
        except BalanceError as exc:
            return DeliveryStatus.failed, f"pledge {pledge.id}: dispute {dispute.get('id')}: {exc}; check by hand"
        target = PledgeState.partially_refunded if pledge.refunded_minor else PledgeState.held
        moved = pledges.transition(pledge.id, target)
        if moved:
            on_dispute_closed(pledge.id, won=True)
        return DeliveryStatus.processed, f"pledge {pledge.id} held again" if moved else f"pledge {pledge.id} unchanged"
    if dispute.get("status") == "lost":
        if not isinstance(dispute.get("amount"), int) or not isinstance(dispute.get("id"), str):
            return DeliveryStatus.failed, "the dispute carries no amount or id"
        amount = from_stripe_amount(dispute["amount"], dispute.get("currency") or pledge.currency.lower())
        if amount.currency != pledge.currency:
            return DeliveryStatus.failed, f"dispute in {amount.currency} on a {pledge.currency} pledge: check by hand"
        # What moved is the sum of the dispute's balance transactions' net, each once by id (fee included).
        try:
            moves = movements(dispute.get("balance_transactions"))
            if any(move.currency != pledge.currency for move in moves):
                raise BalanceError("a balance transaction in another currency")
        except BalanceError as exc:
            return DeliveryStatus.failed, f"pledge {pledge.id}: dispute {dispute['id']}: {exc}; check by hand"
        if db.session.get(Pledge, pledge.id).state is PledgeState.released:
            moved = after_payout.record_loss_after_payout(pledge.id, amount.amount_minor, dispute_id=dispute["id"],
                                                     balance_transactions=dispute.get("balance_transactions"))
            return DeliveryStatus.processed, (
                f"pledge {pledge.id}: dispute lost after payout, covered by the commons"
                if moved else f"pledge {pledge.id}: dispute loss recorded already")
        taken = sum(move.taken_minor for move in moves) if moves else amount.amount_minor
        held = db.session.get(Pledge, pledge.id).held_minor
        moved = held > 0 and taken > 0 and pledges.refund(pledge.id, min(taken, held),
                                                          refund_id=f"dispute:{dispute['id']}", actor=ACTOR,
                                                          to=AccountKind.disputes)
        fees = after_payout.record_dispute_fees(pledge.currency, dispute.get("balance_transactions"),
                                           dispute_id=dispute["id"])
        if moved:
            payouts.on_dispute_closed(pledge.id, won=False)
        moved = moved or fees > 0
        return DeliveryStatus.processed, (
            f"pledge {pledge.id}: dispute lost, {amount.amount_minor} recorded as a loss" if moved
            else f"pledge {pledge.id}: dispute loss recorded already")
    return DeliveryStatus.ignored, f"dispute closed as {dispute.get('status')!r}"


def account_updated(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Connect: whether a recipient's account can receive transfers; waiting shares are paid when it can."""
    account = event["data"]["object"]
    if not isinstance(account, dict) or not isinstance(account.get("id"), str):
        return DeliveryStatus.failed, "the event carries no account"
    return DeliveryStatus.processed, on_account_updated(account)


def transfer_reversed(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Connect: a transfer to a recipient was reversed (by the commons, or elsewhere)."""
    transfer = event["data"]["object"]
    if not isinstance(transfer, dict) or not isinstance(transfer.get("id"), str):
        return DeliveryStatus.failed, "the event carries no transfer"
    return DeliveryStatus.processed, on_transfer_reversed(transfer)


def apply_event(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Apply one stored Stripe event; returns (status, outcome). Flushes.

    An event of a handled type whose shape is not Stripe's
    (:class:`~marketplace.webhooks.schemas.StripeEvent`: a negative, string or
    boolean amount, metadata that is not an object, a refund without an id…)
    is ``malformed`` before anything is read. An event that contradicts our
    books (another amount or currency than the pledge's, a payment another
    pledge holds, a refund larger than what is held) is ``failed`` for a person
    to check: retrying cannot change the answer. The caller undoes whatever a
    malformed or failed event flushed (:func:`marketplace.webhooks.service.handle`).

    Raises :class:`NotMatchedYet` (the delivery waits and is tried again) and
    ``PaymentsUnavailable`` (Stripe could not be asked: retried as a failure).
    """
    # A project fund's subscription (Stripe Billing): its own events and handlers.
    routed = fund_events.apply_fund_event(event, delivery)
    if routed is not None:
        return routed
    handler = HANDLERS.get(event.get("type"))
    if handler is None:
        return DeliveryStatus.ignored, f"Stripe event {event.get('type')!r} not handled"
    try:
        schemas.validate(schemas.StripeEvent, event)
    except schemas.MalformedPayload as exc:
        return DeliveryStatus.malformed, f"malformed {event.get('type')} event: {exc}"[:2000]
    # A refund or chargeback of a fund subscription's invoice: out of the fund.
    routed = fund_events.apply_fund_charge_event(event, delivery)
    if routed is not None:
        return routed
    # A refund that paid a leaving project's return back to a subscriber (failed: owed again).
    routed = fund_events.apply_fund_refund_event(event, delivery)
    if routed is not None:
        return routed
    # A matching pool's budget paid by card: the same events, its own handlers.
    routed = pool_events.apply_pool_event(event, delivery)
    if routed is not None:
        return routed
    try:
        return handler(event, delivery)
    except NotAPledge as exc:
        if exc.pool_id is not None:
            # Only Stripe knew whose payment it was (a dispute before anything else): the pool's, named now.
            named = {**event, "data": {**event["data"], "object": {
                **event["data"]["object"], "metadata": {"pool_id": str(exc.pool_id)}}}}
            return pool_events.apply_pool_event(named, delivery) or (DeliveryStatus.ignored, str(exc))
        return DeliveryStatus.ignored, str(exc)
    except (PaymentMismatch, pledges.PledgeError) as exc:
        return DeliveryStatus.failed, f"{exc}: check by hand"[:2000]


def hold_paid_session(session_obj: dict) -> str:
    """The success page's path to the same hold as the webhook's (whichever
    comes first; the other changes nothing). Raises what :func:`find_pledge`
    and ``mark_received`` raise, and ``PledgeError`` when the hold cannot be
    made whole (a refund Stripe lists that a person must check): the caller
    rolls back, and the webhook delivery records it."""
    status, outcome = _session_outcome(find_pledge(session_obj), session_obj)
    if status is DeliveryStatus.failed:
        raise pledges.PledgeError(outcome)
    return outcome


HANDLERS = {
    "account.updated": account_updated,
    "transfer.reversed": transfer_reversed,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": async_payment_succeeded,
    "checkout.session.async_payment_failed": async_payment_failed,
    "checkout.session.expired": checkout_expired,
    "charge.refunded": charge_refunded,
    "charge.refund.updated": refund_updated,
    "refund.updated": refund_updated,
    "refund.failed": refund_updated,
    "charge.dispute.updated": dispute_created,
}
