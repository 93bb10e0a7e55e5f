"""Stripe webhook events that move pledge money.

Follows Stripe's "Fulfill orders" and "Refund and cancel payments" guides:
``checkout.session.completed`` with ``payment_status`` ``paid`` holds the
money, ``unpaid`` (an asynchronous method such as SEPA debit) leaves the
pledge processing until ``checkout.session.async_payment_succeeded`` or
``_failed``; ``charge.refunded`` carries the cumulative ``amount_refunded``
and each refund by its own id. Events come twice, late and out of order:
every handler is idempotent and only moves a pledge forward.
"""
from __future__ import annotations

from sqlalchemy import select

from marketplace.extensions import db
from marketplace.money import from_stripe_amount
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery

ACTOR = "stripe"
Outcome = tuple[DeliveryStatus, str]


def _pledge_of_session(session_obj: dict) -> Pledge | None:
    metadata = session_obj.get("metadata") if isinstance(session_obj.get("metadata"), dict) else {}
    pledge_id = metadata.get("pledge_id") or session_obj.get("client_reference_id")
    pledge = None
    if isinstance(pledge_id, str) and pledge_id.isdigit():
        pledge = db.session.get(Pledge, int(pledge_id))
    if pledge is None and isinstance(session_obj.get("id"), str):
        pledge = db.session.scalar(select(Pledge).where(Pledge.checkout_session_id == session_obj["id"]))
    return pledge


def _record_payment_intent(pledge: Pledge, session_obj: dict) -> None:
    intent = session_obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if isinstance(intent, str) and pledge.payment_intent_id is None:
        pledge.payment_intent_id = intent


def _hold(pledge: Pledge, session_obj: dict) -> Outcome:
    amount, currency = session_obj.get("amount_total"), session_obj.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return DeliveryStatus.failed, "the session carries no amount_total/currency"
    moved = pledges.mark_received(pledge.id, from_stripe_amount(amount, currency), actor=ACTOR)
    return DeliveryStatus.processed, f"pledge {pledge.id} held" if moved else f"pledge {pledge.id} was held already"


def checkout_completed(event: dict, delivery: WebhookDelivery) -> Outcome:
    session_obj = event["data"]["object"]
    pledge = _pledge_of_session(session_obj)
    if pledge is None:
        return DeliveryStatus.ignored, "no pledge for this checkout session"
    _record_payment_intent(pledge, session_obj)
    if session_obj.get("payment_status") in ("paid", "no_payment_required"):
        return _hold(pledge, session_obj)
    moved = pledges.transition(pledge.id, PledgeState.processing)
    return DeliveryStatus.processed, (
        f"pledge {pledge.id} processing (payment not settled yet)" if moved else f"pledge {pledge.id} unchanged")


def async_payment_succeeded(event: dict, delivery: WebhookDelivery) -> Outcome:
    session_obj = event["data"]["object"]
    pledge = _pledge_of_session(session_obj)
    if pledge is None:
        return DeliveryStatus.ignored, "no pledge for this checkout session"
    _record_payment_intent(pledge, session_obj)
    return _hold(pledge, session_obj)


def async_payment_failed(event: dict, delivery: WebhookDelivery) -> Outcome:
    pledge = _pledge_of_session(event["data"]["object"])
    if pledge is None:
        return DeliveryStatus.ignored, "no pledge for this checkout session"
    moved = pledges.transition(pledge.id, PledgeState.failed)
    if moved:
        pledges.release_pending(pledge.id)
    return DeliveryStatus.processed, f"pledge {pledge.id} failed" if moved else f"pledge {pledge.id} unchanged"


def charge_refunded(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Apply each refund of the charge by its own id (``amount_refunded`` is cumulative).

    A refund seen before changes nothing, so the same event twice, or an older
    event after a newer one, refunds each unit once.
    """
    charge = event["data"]["object"]
    intent = charge.get("payment_intent")
    pledge = db.session.scalar(select(Pledge).where(Pledge.payment_intent_id == intent)) if intent else None
    if pledge is None:
        return DeliveryStatus.ignored, "no pledge for this charge"
    refunds = (charge.get("refunds") or {}).get("data")
    if not isinstance(refunds, list) or (charge.get("refunds") or {}).get("has_more"):
        # Newer API versions leave refunds out of the charge: ask Stripe for them.
        from marketplace.payments import stripe_client

        refunds = stripe_client.list_refunds(pledge.payment_intent_id)
    applied, refused = [], []
    for refund in sorted(refunds, key=lambda r: (r.get("created") or 0, r.get("id") or "")):
        if refund.get("status") not in (None, "succeeded", "pending"):
            continue
        if not isinstance(refund.get("amount"), int) or not isinstance(refund.get("id"), str):
            refused.append(str(refund.get("id")))
            continue
        amount = from_stripe_amount(refund["amount"], refund.get("currency") or charge.get("currency") or "")
        if amount.currency != pledge.currency:
            refused.append(f"{refund['id']} ({amount.currency}, pledge in {pledge.currency})")
            continue
        if db.session.get(Pledge, pledge.id).state is PledgeState.released:
            # Refunded in Stripe's dashboard after the money was paid out: the
            # commons covered it (recorded once per refund id, flagged for an admin).
            from marketplace.payouts.service import record_refund_after_payout_elsewhere

            if record_refund_after_payout_elsewhere(pledge.id, amount.amount_minor, refund_id=refund["id"]):
                applied.append(refund["id"])
            continue
        if pledges.refund(pledge.id, amount.amount_minor, refund_id=refund["id"], actor=ACTOR):
            applied.append(refund["id"])
    if refused:
        return DeliveryStatus.failed, f"pledge {pledge.id}: refunds refused for a person to check: {', '.join(refused)}"
    return DeliveryStatus.processed, (
        f"pledge {pledge.id}: refunds {', '.join(applied)} applied" if applied else f"pledge {pledge.id}: no new refund")


def _pledge_of_dispute(dispute: dict) -> Pledge | None:
    intent = dispute.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if not isinstance(intent, str):
        return None
    return db.session.scalar(select(Pledge).where(Pledge.payment_intent_id == intent))


def dispute_created(event: dict, delivery: WebhookDelivery) -> Outcome:
    """A chargeback opened: the pledge is disputed (its money stays in escrow, not payable)."""
    dispute = event["data"]["object"]
    pledge = _pledge_of_dispute(dispute)
    if pledge is None:
        return DeliveryStatus.ignored, "no pledge for this dispute"
    if _dispute_closed_already(pledge.id, dispute.get("id")):
        return DeliveryStatus.ignored, f"dispute {dispute.get('id')} on pledge {pledge.id} was closed already"
    moved = pledges.transition(pledge.id, PledgeState.disputed)
    if moved:
        from marketplace.payouts.service import on_pledge_disputed

        on_pledge_disputed(pledge.id)
    return DeliveryStatus.processed, f"pledge {pledge.id} disputed" if moved else f"pledge {pledge.id} unchanged"


def _dispute_closed_already(pledge_id: int, dispute_id) -> bool:
    """Whether ``charge.dispute.closed`` for ``dispute_id`` was applied to the pledge
    (a late or replayed ``created`` must not open it again)."""
    from marketplace.audit.models import AuditEvent

    if not isinstance(dispute_id, str):
        return False
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "pledge.dispute_closed", AuditEvent.object_type == "pledge",
        AuditEvent.object_id == str(pledge_id)))
    return any((event.details or {}).get("dispute") == dispute_id for event in events)


def dispute_closed(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Won: back to held. Lost: the disputed amount leaves escrow as a loss, exactly once."""
    from marketplace.audit import service as audit

    dispute = event["data"]["object"]
    pledge = _pledge_of_dispute(dispute)
    if pledge is None:
        return DeliveryStatus.ignored, "no pledge for this dispute"
    if dispute.get("status") in ("won", "lost") and isinstance(dispute.get("id"), str) \
            and not _dispute_closed_already(pledge.id, dispute["id"]):
        audit.record("pledge.dispute_closed", "pledge", pledge.id, actor=ACTOR,
                     details={"dispute": dispute["id"], "status": dispute["status"]})
    if dispute.get("status") == "won":
        # Won: the disputed money came back; what Stripe kept of its fees (the
        # fee of each balance transaction, once by id) is still the commons' cost.
        from marketplace.payments.balance import BalanceError
        from marketplace.payouts.service import record_dispute_fees

        try:
            if isinstance(dispute.get("id"), str):
                record_dispute_fees(pledge.currency, dispute.get("balance_transactions"), dispute_id=dispute["id"])
        except BalanceError as exc:
            return DeliveryStatus.failed, f"pledge {pledge.id}: dispute {dispute.get('id')}: {exc}; check by hand"
        target = PledgeState.partially_refunded if pledge.refunded_minor else PledgeState.held
        moved = pledges.transition(pledge.id, target)
        if moved:
            from marketplace.payouts.service import on_dispute_closed

            on_dispute_closed(pledge.id, won=True)
        return DeliveryStatus.processed, f"pledge {pledge.id} held again" if moved else f"pledge {pledge.id} unchanged"
    if dispute.get("status") == "lost":
        if not isinstance(dispute.get("amount"), int) or not isinstance(dispute.get("id"), str):
            return DeliveryStatus.failed, "the dispute carries no amount or id"
        amount = from_stripe_amount(dispute["amount"], dispute.get("currency") or pledge.currency.lower())
        if amount.currency != pledge.currency:
            return DeliveryStatus.failed, f"dispute in {amount.currency} on a {pledge.currency} pledge: check by hand"
        from marketplace.ledger.models import AccountKind
        from marketplace.payouts import service as payouts

        # What moved is the sum of the dispute's balance transactions' net, each once by id (fee included).
        from marketplace.payments.balance import BalanceError, movements

        try:
            moves = movements(dispute.get("balance_transactions"))
            if any(move.currency != pledge.currency for move in moves):
                raise BalanceError("a balance transaction in another currency")
        except BalanceError as exc:
            return DeliveryStatus.failed, f"pledge {pledge.id}: dispute {dispute['id']}: {exc}; check by hand"
        if db.session.get(Pledge, pledge.id).state is PledgeState.released:
            moved = payouts.record_loss_after_payout(pledge.id, amount.amount_minor, dispute_id=dispute["id"],
                                                     balance_transactions=dispute.get("balance_transactions"))
            return DeliveryStatus.processed, (
                f"pledge {pledge.id}: dispute lost after payout, covered by the commons"
                if moved else f"pledge {pledge.id}: dispute loss recorded already")
        taken = sum(move.taken_minor for move in moves) if moves else amount.amount_minor
        held = db.session.get(Pledge, pledge.id).held_minor
        moved = held > 0 and taken > 0 and pledges.refund(pledge.id, min(taken, held),
                                                          refund_id=f"dispute:{dispute['id']}", actor=ACTOR,
                                                          to=AccountKind.disputes)
        fees = payouts.record_dispute_fees(pledge.currency, dispute.get("balance_transactions"),
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
    from marketplace.payouts.service import on_account_updated

    account = event["data"]["object"]
    if not isinstance(account, dict) or not isinstance(account.get("id"), str):
        return DeliveryStatus.failed, "the event carries no account"
    return DeliveryStatus.processed, on_account_updated(account)


def transfer_reversed(event: dict, delivery: WebhookDelivery) -> Outcome:
    """Connect: a transfer to a recipient was reversed (by the commons, or elsewhere)."""
    from marketplace.payouts.service import on_transfer_reversed

    transfer = event["data"]["object"]
    if not isinstance(transfer, dict) or not isinstance(transfer.get("id"), str):
        return DeliveryStatus.failed, "the event carries no transfer"
    return DeliveryStatus.processed, on_transfer_reversed(transfer)


HANDLERS = {
    "account.updated": account_updated,
    "transfer.reversed": transfer_reversed,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": async_payment_succeeded,
    "checkout.session.async_payment_failed": async_payment_failed,
    "charge.refunded": charge_refunded,
}
