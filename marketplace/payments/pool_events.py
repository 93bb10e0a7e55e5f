"""Stripe webhook events about a matching pool's budget paid by card.

The same deliveries, signature check, storage by event id, savepoint and
retry as the pledges' events (:mod:`marketplace.payments.stripe_events`
routes here when the object is a pool's): the pool id travels on the
Checkout Session (``metadata``, ``client_reference_id`` ``pool-<id>``), the
PaymentIntent and its charges (``payment_intent_data.metadata``), and on our
refunds (``metadata.pool_id``, ``pool_refund_id``); a dispute is matched by
its PaymentIntent. Events come in any order and twice: a charge or refund
event before the completion funds the pool from the charge first; each
refund applies once by its own id; an older session's expiry changes nothing.
"""
from __future__ import annotations

from sqlalchemy import select

from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.money import from_stripe_amount
from marketplace.payments import stripe_client
from marketplace.pools import rails
from marketplace.pools.models import MatchingPool, PoolRefund, PoolState
from marketplace.pools.service import PoolError
from marketplace.webhooks.models import DeliveryStatus, NotMatchedYet, WebhookDelivery

Outcome = tuple[DeliveryStatus, str]
MAX_POOL_ID = 2**31 - 1


def _number(value) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10 \
            and 0 < int(value) <= MAX_POOL_ID:
        return int(value)
    return None


def named_pool_id(obj: dict) -> int | None:
    """The pool id an object names itself (metadata ``pool_id``, or a session's
    ``client_reference_id`` ``pool-<id>``), or None."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    found = _number(metadata.get("pool_id"))
    reference = obj.get("client_reference_id")
    if found is None and isinstance(reference, str) and reference.startswith("pool-"):
        found = _number(reference[5:])
    return found


def _intent_id(obj: dict) -> str | None:
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return intent if isinstance(intent, str) and intent else None


def pool_of(obj: dict) -> MatchingPool | None:
    """The pool a Stripe object is about, from our own records, or None (a pledge's, or unknown):
    the pool id it names, else its PaymentIntent or Checkout Session recorded on a pool."""
    pool_id = named_pool_id(obj)
    if pool_id is not None:
        return db.session.get(MatchingPool, pool_id)
    intent = _intent_id(obj) or (obj.get("id") if obj.get("object") == "payment_intent" else None)
    if intent:
        pool = db.session.scalar(select(MatchingPool).where(MatchingPool.payment_intent_id == intent))
        if pool is not None:
            return pool
    if obj.get("object") == "checkout.session" and isinstance(obj.get("id"), str):
        return db.session.scalar(select(MatchingPool).where(MatchingPool.checkout_session_id == obj["id"]))
    if obj.get("object") == "refund" and isinstance(obj.get("id"), str):
        row = db.session.scalar(select(PoolRefund).where(PoolRefund.refund_id == obj["id"]))
        return db.session.get(MatchingPool, row.pool_id) if row is not None else None
    return None


def is_pool_object(obj: dict) -> bool:
    """Whether the object names a pool, or is a payment we recorded on one."""
    return named_pool_id(obj) is not None or pool_of(obj) is not None


def _charge_paid(charge: dict | None) -> bool:
    return isinstance(charge, dict) and charge.get("paid") is True and charge.get("status") == "succeeded" \
        and isinstance(charge.get("amount"), int) and isinstance(charge.get("currency"), str)


def _fund_from_charge(pool: MatchingPool, charge: dict | None, intent: str | None = None) -> list[str]:
    """An event about the pool's payment came before its completion: the charge
    (the event's, or Stripe's now) proves the payment, so the pool is funded
    first. Raises :class:`NotMatchedYet` when nothing shows it paid yet."""
    if pool.state is not PoolState.awaiting_budget:
        return []
    intent = _intent_id(charge or {}) or intent or pool.payment_intent_id
    if not _charge_paid(charge) and intent and stripe_client.configured():
        latest = stripe_client.retrieve_payment_intent(intent).get("latest_charge")
        charge = latest if isinstance(latest, dict) else None
    if not _charge_paid(charge):
        raise NotMatchedYet(f"pool {pool.id}: its payment is not received yet")
    rails.card_paid(pool, None, _intent_id(charge) or intent, from_stripe_amount(charge["amount"], charge["currency"]))
    return [f"pool {pool.id} funded from its charge"]


def _the_pool(obj: dict) -> MatchingPool:
    pool = pool_of(obj)
    if pool is None:
        raise NotMatchedYet(f"no pool {named_pool_id(obj)} for {obj.get('object')} {obj.get('id')} yet")
    return pool


def fund_from_session(pool: MatchingPool, session_obj: dict) -> bool | None:
    """Fund ``pool`` from its paid Checkout Session ``session_obj`` (Stripe's
    object: ``amount_total`` in Stripe's minor units, ``currency``): what
    arrived is the pool's money. Returns True when this call funded it, False
    when it was funded already, None when the session carries no amount or
    currency. Raises what :func:`marketplace.pools.rails.card_paid` raises
    (``PoolError``) and ``MoneyError`` for an unknown currency. Used by the
    webhook and by the page Stripe sends the sponsor back to."""
    amount, currency = session_obj.get("amount_total"), session_obj.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return None
    return rails.card_paid(pool, session_obj.get("id"), _intent_id(session_obj), from_stripe_amount(amount, currency))


def session_paid(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``checkout.session.completed`` (paid) / ``async_payment_succeeded``: the pool is funded;
    ``completed`` unpaid (an asynchronous method) waits for its outcome."""
    session_obj = event["data"]["object"]
    pool = _the_pool(session_obj)
    if event["type"] == "checkout.session.completed" \
            and session_obj.get("payment_status") not in ("paid", "no_payment_required"):
        return DeliveryStatus.processed, f"pool {pool.id}: payment on its way"
    moved = fund_from_session(pool, session_obj)
    if moved is None:
        return DeliveryStatus.failed, "the session carries no amount_total/currency"
    notes = [f"pool {pool.id} funded" if moved else f"pool {pool.id} was funded already"]
    if moved and pool.payment_intent_id and stripe_client.configured():
        # Refunded or disputed in Stripe before this reached us: apply it now, in the same transaction.
        charge = stripe_client.retrieve_payment_intent(pool.payment_intent_id).get("latest_charge")
        if isinstance(charge, dict):
            notes += _apply_charge(pool, charge)
    return DeliveryStatus.processed, "; ".join(notes)


def session_dropped(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``checkout.session.expired`` / ``async_payment_failed``: the sponsor may pay again."""
    session_obj = event["data"]["object"]
    pool = _the_pool(session_obj)
    moved = rails.checkout_dropped(pool, session_obj.get("id"), why=event["type"])
    return DeliveryStatus.processed, (f"pool {pool.id}: checkout {session_obj.get('id')} dropped" if moved
                                      else f"pool {pool.id} unchanged")


def _refunds_of(pool: MatchingPool, charge: dict) -> list[dict]:
    listed = charge.get("refunds") if isinstance(charge.get("refunds"), dict) else None
    refunds = listed.get("data") if listed else None
    if not isinstance(refunds, list) or listed.get("has_more"):
        refunds = stripe_client.list_refunds(pool.payment_intent_id) if pool.payment_intent_id else []
    return sorted((r for r in refunds if isinstance(r, dict)),
                  key=lambda r: (r.get("created") or 0, str(r.get("id") or "")))


def _our_row(pool: MatchingPool, refund: dict) -> PoolRefund | None:
    """The pool's refund row a refund is (by the row id in its metadata, else its
    refund id), or None: made in Stripe's dashboard, or made for a row withdrawn
    since (:func:`marketplace.pools.rails._withdraw_unsent`), whose money then
    left like a dashboard refund's."""
    metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
    named = metadata.get("pool_refund_id")
    row = db.session.get(PoolRefund, int(named)) if _number(named) is not None else None
    if row is None and isinstance(refund.get("id"), str):
        row = db.session.scalar(select(PoolRefund).where(PoolRefund.refund_id == refund["id"]))
    return row if row is not None and row.pool_id == pool.id else None


def _as_stripe_has_it(pool: MatchingPool, refund: dict) -> dict:
    """The refund as Stripe lists it now on the pool's PaymentIntent (the
    event's copy when Stripe is not configured or does not list it).
    Raises ``PaymentsUnavailable``."""
    if not pool.payment_intent_id or not stripe_client.configured():
        return refund
    for current in stripe_client.list_refunds(pool.payment_intent_id):
        if isinstance(current, dict) and current.get("id") == refund.get("id"):
            return current
    return refund


def _apply_refund(pool: MatchingPool, refund: dict) -> str | None:
    """One refund of the pool's payment by its own id: ours (booked when made;
    a failure gives its money back), or one made in Stripe's dashboard."""
    refund_id = refund.get("id")
    if not isinstance(refund_id, str):
        return None
    ours = _our_row(pool, refund) is not None
    if not ours:
        # An event is a snapshot, and a late one may say "succeeded" of a refund that
        # failed since: one made in the dashboard is booked as Stripe has it now.
        refund = _as_stripe_has_it(pool, refund)
    if refund.get("status") in ("failed", "canceled"):
        return f"refund {refund_id} failed: owed to the sponsor" if rails.refund_failed(pool, refund) else None
    if ours:
        return None  # booked when we made it (or waits for our own booking)
    if refund.get("status") not in (None, "succeeded", "pending") or not isinstance(refund.get("amount"), int):
        return None
    amount = from_stripe_amount(refund["amount"], refund.get("currency") or pool.currency.lower())
    if amount.currency != pool.currency:
        raise PoolError(f"refund {refund_id} in {amount.currency}, pool {pool.id} in {pool.currency}")
    moved = rails.returned_elsewhere(pool, amount.amount_minor, key=refund_id, why="refunded in Stripe")
    return f"refund {refund_id} made in Stripe booked as returned" if moved else None


def _apply_charge(pool: MatchingPool, charge: dict) -> list[str]:
    notes = [note for refund in _refunds_of(pool, charge) if (note := _apply_refund(pool, refund))]
    if charge.get("disputed") is True and pool.payment_intent_id and stripe_client.configured():
        notes += [_apply_dispute(pool, dispute) for dispute in stripe_client.list_disputes(pool.payment_intent_id)]
    return notes


def _another_payment(pool: MatchingPool, obj: dict) -> Outcome | None:
    """A charge, refund or dispute of a card payment that names the pool but is
    not the one that funded it (a second Checkout paid, failed for a person and
    refunded in Stripe; a payment for a pool funded by transfer or cancelled):
    that money never entered the books, so its going back takes nothing from
    the pool. Returns the outcome then, else None."""
    intent = _intent_id(obj)
    if intent is None or intent == pool.payment_intent_id:
        return None
    audit.record("pool.other_payment_event", "matching_pool", pool.id, actor=rails.ACTOR,
                 details={"object": obj.get("object"), "id": obj.get("id"), "payment_intent": intent})
    return DeliveryStatus.processed, (f"{obj.get('object')} {obj.get('id')}: {intent} is not the payment that "
                                      f"funded pool {pool.id}; nothing booked")


def charge_refunded(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``charge.refunded``: each refund of the charge once, by id (the payment is brought in first)."""
    charge = event["data"]["object"]
    pool = _the_pool(charge)
    notes = _fund_from_charge(pool, charge)
    if (other := _another_payment(pool, charge)) is not None:
        return other
    notes += _apply_charge(pool, charge)
    return DeliveryStatus.processed, "; ".join(notes) or f"pool {pool.id}: no new refund"


def refund_updated(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``refund.failed`` / ``refund.updated`` / ``charge.refund.updated``: the refund as its status says now."""
    refund = event["data"]["object"]
    pool = _the_pool(refund)
    notes = _fund_from_charge(pool, None, _intent_id(refund))
    if (other := _another_payment(pool, refund)) is not None:
        return other
    note = _apply_refund(pool, refund)
    return DeliveryStatus.processed, "; ".join([*notes, note or f"pool {pool.id}: refund {refund.get('id')} "
                                                f"{refund.get('status')}, nothing new"])


def _apply_dispute(pool: MatchingPool, dispute: dict) -> str:
    """A chargeback on the pool's payment. Open: recorded for the fiscal host.
    Lost: the disputed amount went back to the sponsor through their card,
    booked once by the dispute id out of what the pool holds."""
    dispute_id, status = dispute.get("id"), dispute.get("status")
    if status == "lost" and isinstance(dispute_id, str) and isinstance(dispute.get("amount"), int):
        amount = from_stripe_amount(dispute["amount"], dispute.get("currency") or pool.currency.lower())
        moved = rails.returned_elsewhere(pool, amount.amount_minor, key=dispute_id, why="chargeback lost")
        return f"pool {pool.id}: dispute {dispute_id} lost, booked as returned" if moved else \
            f"pool {pool.id}: dispute {dispute_id} known"
    audit.record("pool.dispute", "matching_pool", pool.id, actor=rails.ACTOR,
                 details={"dispute": dispute_id, "status": status})
    return f"pool {pool.id}: dispute {dispute_id} {status}"


def dispute_event(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``charge.dispute.*`` on the pool's payment (brought in first if this came first)."""
    dispute = event["data"]["object"]
    pool = _the_pool(dispute)
    notes = _fund_from_charge(pool, None, _intent_id(dispute))
    if (other := _another_payment(pool, dispute)) is not None:
        return other
    return DeliveryStatus.processed, "; ".join([*notes, _apply_dispute(pool, dispute)])


HANDLERS = {
    "checkout.session.completed": session_paid,
    "checkout.session.async_payment_succeeded": session_paid,
    "checkout.session.async_payment_failed": session_dropped,
    "checkout.session.expired": session_dropped,
    "charge.refunded": charge_refunded,
    "charge.refund.updated": refund_updated,
    "refund.updated": refund_updated,
    "refund.failed": refund_updated,
    "charge.dispute.created": dispute_event,
    "charge.dispute.updated": dispute_event,
    "charge.dispute.closed": dispute_event,
}


def apply_pool_event(event: dict, delivery: WebhookDelivery) -> Outcome | None:
    """Apply a stored Stripe event about a pool's payment; None when it is not
    a pool event (a pledge's: the caller goes on). A contradiction with our
    books (:class:`PoolError`) is ``failed`` for a person to check."""
    handler = HANDLERS.get(event.get("type"))
    obj = (event.get("data") or {}).get("object")
    if handler is None or not isinstance(obj, dict) or not is_pool_object(obj):
        return None
    try:
        return handler(event, delivery)
    except PoolError as exc:
        return DeliveryStatus.failed, f"{exc}: check by hand"[:2000]
