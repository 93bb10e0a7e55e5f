"""Stripe Billing webhook events about subscriptions to project funds.

The same deliveries, signature check, storage by event id, savepoint and
retry as the pledges' events (:mod:`marketplace.payments.stripe_events`
routes here first): ``checkout.session.completed`` of a Checkout in
subscription mode, ``customer.subscription.created`` / ``.updated`` /
``.deleted``, ``invoice.paid`` and ``invoice.payment_failed`` (Stripe docs:
"Using webhooks with subscriptions").

Our subscription id travels as ``metadata.fund_subscription_id`` on the
session, on the subscription (``subscription_data.metadata``) and so on each
invoice (``parent.subscription_details.metadata``, or
``subscription_details.metadata`` in older API versions). An object that
names none is matched by the Stripe subscription id we learnt, else by asking
Stripe for the subscription's metadata. Stripe does not order its deliveries:

- ``invoice.paid`` moves the invoice's ``amount_paid`` into the fund once per
  invoice id, whenever it comes (before the subscription is known, twice):
  an invoice that cannot be matched yet raises :class:`NotMatchedYet` — the
  delivery waits and is tried again, never dropped;
- a subscription event applies the subscription's state as Stripe has it
  now (read back when Stripe can be asked; the event's snapshot otherwise),
  so an older ``updated`` arriving late cannot undo a newer pause; a
  deleted subscription is ended for good;
- a refund we made to return a leaving project's fund that Stripe later
  reports failed (``refund.failed`` / ``refund.updated`` /
  ``charge.refund.updated`` with status ``failed``, or listed failed on a
  ``charge.refunded``) is owed to the subscriber again, by bank, once per
  refund id; reported before the return was booked, it waits;
- a refund made at Stripe (not ours) that fails gives back what it took
  from the fund (once per refund id); a ``charge.refunded`` still listing it
  succeeded that arrives after its failure takes nothing (the refund's status
  is read back from Stripe when Stripe can be asked).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.funds import service as funds
from marketplace.funds.models import FundReceipt, FundReturn, FundReturnState, FundSubscription, SubscriptionState
from marketplace.money import MoneyError, from_stripe_amount
from marketplace.payments import stripe_client
from marketplace.webhooks import schemas
from marketplace.webhooks.models import DeliveryStatus, NotMatchedYet, WebhookDelivery

Outcome = tuple[DeliveryStatus, str]
MAX_SUBSCRIPTION_ID = 2**31 - 1
ACTOR = "stripe"


class _InvoiceObject(schemas._Shape):
    """The fields of a Stripe invoice (or subscription, session) that the handlers read."""

    id: schemas.StripeId
    object: schemas.Text | None = None
    metadata: dict[str, schemas.Text] | None = None
    amount_paid: schemas.StripeAmount | None = None
    amount_due: schemas.StripeAmount | None = None
    currency: schemas.StripeCurrency | None = None
    status: schemas.Text | None = None
    subscription: schemas.StripeId | schemas.StripeRef | None = None
    customer: schemas.StripeId | schemas.StripeRef | None = None
    payment_intent: schemas.StripeId | schemas.StripeRef | None = None
    client_reference_id: schemas.Text | None = None
    mode: schemas.Text | None = None
    created: Annotated[StrictInt, Field(ge=0)] | None = None


class _Data(schemas._Shape):
    object: _InvoiceObject


class _Event(schemas._Shape):
    id: schemas.StripeId
    type: schemas.Text
    data: _Data


class NotAFundSubscription(LookupError):
    """The object is not about a fund subscription of ours: an invoice of no
    subscription, or a subscription whose metadata (as Stripe has it) names none."""


def _number(value) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10 \
            and 0 < int(value) <= MAX_SUBSCRIPTION_ID:
        return int(value)
    return None


def _id_of(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _metadata_sources(obj: dict) -> list[dict]:
    """Every metadata hash an object carries ours in: its own, and an invoice's subscription details."""
    found = [obj.get("metadata")]
    parent = obj.get("parent") if isinstance(obj.get("parent"), dict) else {}
    details = parent.get("subscription_details") if isinstance(parent.get("subscription_details"), dict) else {}
    found.append(details.get("metadata"))
    legacy = obj.get("subscription_details") if isinstance(obj.get("subscription_details"), dict) else {}
    found.append(legacy.get("metadata"))
    return [m for m in found if isinstance(m, dict)]


def named_subscription_id(obj: dict) -> int | None:
    """Our subscription id an object names (metadata ``fund_subscription_id``, or a
    session's ``client_reference_id`` ``fund-sub-<id>``), or None."""
    for metadata in _metadata_sources(obj):
        found = _number(metadata.get("fund_subscription_id"))
        if found is not None:
            return found
    reference = obj.get("client_reference_id")
    if isinstance(reference, str) and reference.startswith("fund-sub-"):
        return _number(reference[9:])
    return None


def stripe_subscription_of(obj: dict) -> str | None:
    """The Stripe subscription id an object is about (a subscription's own id)."""
    if obj.get("object") == "subscription":
        return _id_of(obj.get("id"))
    parent = obj.get("parent") if isinstance(obj.get("parent"), dict) else {}
    details = parent.get("subscription_details") if isinstance(parent.get("subscription_details"), dict) else {}
    return _id_of(obj.get("subscription")) or _id_of(details.get("subscription"))


def is_fund_event(event: dict) -> bool:
    """Whether the event is about a fund subscription: any invoice or
    subscription event, or a Checkout Session in subscription mode or naming ours."""
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        return False
    if event.get("type") in SUBSCRIPTION_HANDLERS or event.get("type") in INVOICE_HANDLERS:
        return True
    return event.get("type") == "checkout.session.completed" and (
        obj.get("mode") == "subscription" or named_subscription_id(obj) is not None)


def find_subscription(obj: dict) -> FundSubscription:
    """Our subscription a Stripe object (session, subscription, invoice) is
    about: by the id it names, else the Stripe subscription id we know, else
    the metadata of the subscription read from Stripe. Learns Stripe's ids on
    the way. Raises :class:`NotMatchedYet` (keep the delivery, try again),
    :class:`NotAFundSubscription`, ``PaymentsUnavailable``."""
    sub_id, stripe_sub = named_subscription_id(obj), stripe_subscription_of(obj)
    if sub_id is None and stripe_sub is None and obj.get("object") != "checkout.session":
        raise NotAFundSubscription(f"{obj.get('object')} {obj.get('id')} belongs to no subscription")
    sub = db.session.get(FundSubscription, sub_id) if sub_id is not None else None
    if sub is None and stripe_sub:
        sub = db.session.scalar(select(FundSubscription).where(FundSubscription.stripe_subscription_id == stripe_sub))
    if sub is None and obj.get("object") == "checkout.session" and isinstance(obj.get("id"), str):
        sub = db.session.scalar(select(FundSubscription).where(FundSubscription.checkout_session_id == obj["id"]))
    if sub is None and sub_id is None and stripe_sub and stripe_client.configured():
        sub_id = named_subscription_id(stripe_client.retrieve_subscription(stripe_sub))
        if sub_id is None:
            raise NotAFundSubscription(f"{stripe_sub} names no fund subscription: not a project fund's")
        sub = db.session.get(FundSubscription, sub_id)
    if sub is None:
        raise NotMatchedYet(f"no fund subscription for {obj.get('object') or 'object'} {obj.get('id')}"
                            + (f" ({stripe_sub})" if stripe_sub else "") + " yet")
    if stripe_sub and sub.stripe_subscription_id and sub.stripe_subscription_id != stripe_sub:
        raise funds.FundError(f"{stripe_sub} names fund subscription {sub.id}, whose Stripe subscription is "
                              f"{sub.stripe_subscription_id}")
    funds.learn_stripe_ids(sub, subscription_id=stripe_sub, customer_id=_id_of(obj.get("customer")))
    return sub


def session_completed(event: dict, delivery: WebhookDelivery) -> Outcome:
    """The subscriber finished the Checkout: Stripe's subscription and customer ids
    are learnt; the money comes with ``invoice.paid``."""
    sub = find_subscription(event["data"]["object"])
    return DeliveryStatus.processed, f"fund subscription {sub.id}: checkout completed"


def _apply_status(sub: FundSubscription, stripe_sub: dict, *, deleted: bool) -> str:
    status = stripe_sub.get("status")
    if deleted or status in ("canceled", "incomplete_expired"):
        moved = funds.set_ended(sub, actor=ACTOR)
        return f"fund subscription {sub.id} ended" if moved else f"fund subscription {sub.id} was over already"
    if status not in ("active", "trialing"):
        return f"fund subscription {sub.id}: Stripe says {status!r}, unchanged"
    if isinstance(stripe_sub.get("pause_collection"), dict):
        if sub.state is SubscriptionState.pending:
            funds.move(sub, SubscriptionState.active, started_at=sub.started_at)
        moved = funds.set_paused(sub, True, actor=ACTOR)
        return f"fund subscription {sub.id} paused" if moved else f"fund subscription {sub.id} unchanged"
    moved = funds.move(sub, SubscriptionState.active, paused_at=None)
    return f"fund subscription {sub.id} active" if moved else f"fund subscription {sub.id} unchanged"


def subscription_event(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``customer.subscription.created`` / ``.updated`` / ``.deleted``: the
    subscription's state as Stripe has it now (deleted: ended for good)."""
    obj = event["data"]["object"]
    sub = find_subscription(obj)
    deleted = event["type"] == "customer.subscription.deleted"
    current = obj
    if not deleted and stripe_client.configured() and sub.stripe_subscription_id:
        current = stripe_client.retrieve_subscription(sub.stripe_subscription_id)
    return DeliveryStatus.processed, _apply_status(sub, current, deleted=deleted)


def invoice_paid(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``invoice.paid``: its ``amount_paid`` moves into the fund, once per invoice id."""
    invoice = event["data"]["object"]
    sub = find_subscription(invoice)
    amount, currency = invoice.get("amount_paid"), invoice.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return DeliveryStatus.failed, f"invoice {invoice.get('id')} carries no amount_paid/currency"
    if amount == 0:
        return DeliveryStatus.processed, f"invoice {invoice['id']}: nothing paid"
    moved = funds.receive(sub.id, invoice["id"], from_stripe_amount(amount, currency),
                          payment_intent_id=_id_of(invoice.get("payment_intent")), actor=ACTOR)
    return DeliveryStatus.processed, (f"invoice {invoice['id']}: {amount} {currency} into fund {sub.fund_id}"
                                      if moved else f"invoice {invoice['id']} was received already")


def invoice_payment_failed(event: dict, delivery: WebhookDelivery) -> Outcome:
    """``invoice.payment_failed``: nothing moves; the subscriber is told (once per invoice)."""
    invoice = event["data"]["object"]
    sub = find_subscription(invoice)
    told = funds.invoice_failed(sub.id, invoice["id"])
    return DeliveryStatus.processed, (f"invoice {invoice['id']} failed: subscriber told" if told
                                      else f"invoice {invoice['id']} failed: told already")


SUBSCRIPTION_HANDLERS = {
    "customer.subscription.created": subscription_event,
    "customer.subscription.updated": subscription_event,
    "customer.subscription.deleted": subscription_event,
}
INVOICE_HANDLERS = {
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
}


def apply_fund_event(event: dict, delivery: WebhookDelivery) -> Outcome | None:
    """Apply a stored Stripe event about a fund subscription; None when it is
    not one (the caller goes on). A malformed object is ``malformed``; a
    contradiction with our books (:class:`~marketplace.funds.service.FundError`)
    is ``failed`` for a person to check. Raises :class:`NotMatchedYet` and
    ``PaymentsUnavailable`` (retried)."""
    if not is_fund_event(event):
        return None
    try:
        schemas.validate(_Event, event)
    except schemas.MalformedPayload as exc:
        return DeliveryStatus.malformed, f"malformed {event.get('type')} event: {exc}"[:2000]
    handler = {**SUBSCRIPTION_HANDLERS, **INVOICE_HANDLERS}.get(event["type"], session_completed)
    try:
        return handler(event, delivery)
    except NotAFundSubscription as exc:
        return DeliveryStatus.ignored, str(exc)
    except funds.FundError as exc:
        return DeliveryStatus.failed, f"{exc}: check by hand"[:2000]


# --- Stripe taking an invoice's money back ------------------------------------------

CHARGE_EVENTS = ("charge.refunded", "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
REFUND_EVENTS = ("refund.updated", "refund.failed", "charge.refund.updated")
FAILED_REFUND_STATES = ("failed", "canceled")


def _receipt_of(obj: dict) -> FundReceipt | None:
    """The fund receipt of the invoice a charge or dispute paid (by its PaymentIntent, else its invoice id)."""
    intent, invoice = _id_of(obj.get("payment_intent")), _id_of(obj.get("invoice"))
    receipt = None
    if intent:
        receipt = db.session.scalar(select(FundReceipt).where(FundReceipt.payment_intent_id == intent))
    if receipt is None and invoice:
        receipt = db.session.scalar(select(FundReceipt).where(FundReceipt.external_id == invoice))
    return receipt


def _ours(refund: dict) -> bool:
    """Whether the refund is one we made (a leaving project's return, booked when it was made)."""
    metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
    if metadata.get("fund_return_id") is not None:
        return True
    return db.session.scalar(select(FundReturn.id).where(
        FundReturn.reference.contains(str(refund.get("id")), autoescape=True)).limit(1)) is not None


def _return_of(refund: dict) -> FundReturn | None:
    """The leaving project's return a refund of ours paid: named by its metadata
    ``fund_return_id``, else the first return whose refund ids list it; None: not ours."""
    metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
    return_id = _number(metadata.get("fund_return_id"))
    if return_id is not None:
        return db.session.get(FundReturn, return_id)
    if not isinstance(refund.get("id"), str):
        return None
    return db.session.scalar(select(FundReturn).where(
        FundReturn.reference.contains(refund["id"], autoescape=True)).order_by(FundReturn.id).limit(1))


def return_refund_failed(refund: dict, row: FundReturn) -> str:
    """One of our return refunds failed at Stripe (``refund.failed``, ``refund.updated``
    or ``charge.refund.updated`` with status ``failed``, or listed so on a
    ``charge.refunded``): the amount is owed to the subscriber again, for the
    fiscal host to send by bank (:func:`marketplace.funds.service.return_refund_failed`),
    once per refund id. A failure reported before the return was booked (the
    webhook outran the commit that made the refund) raises :class:`NotMatchedYet`:
    the delivery waits for the booking. Raises :class:`~marketplace.funds.service.FundError`
    for an amount or currency that does not fit the return."""
    db.session.refresh(row)
    if row.state is FundReturnState.due:
        raise NotMatchedYet(f"refund {refund['id']} of return {row.id} failed before the return was booked")
    try:
        money = from_stripe_amount(refund.get("amount"), refund.get("currency") or row.currency.lower())
    except (MoneyError, TypeError, ValueError, AttributeError) as exc:
        raise funds.FundError(f"refund {refund['id']}: {exc}") from exc
    if money.currency != row.currency:
        raise funds.FundError(f"refund {refund['id']} in {money.currency}, the return in {row.currency}")
    reason = refund.get("failure_reason") if isinstance(refund.get("failure_reason"), str) else refund.get("status")
    owed = funds.return_refund_failed(row.id, refund["id"], money.amount_minor, reason=reason, actor=ACTOR)
    if owed is None:
        return f"refund {refund['id']} of return {row.id} failed: recorded already"
    return f"refund {refund['id']} of return {row.id} failed: {owed.amount_minor} owed by bank (return {owed.id})"


def _refunds(charge: dict, intent: str | None) -> list[dict]:
    listed = charge.get("refunds") if isinstance(charge.get("refunds"), dict) else {}
    refunds = listed.get("data")
    if not isinstance(refunds, list) or listed.get("has_more"):
        refunds = stripe_client.list_refunds(intent) if intent and stripe_client.configured() else []
    return [r for r in refunds if isinstance(r, dict) and isinstance(r.get("id"), str)]


def _live_refund_states(intent: str | None) -> dict[str, str]:
    """The refunds of ``intent`` as Stripe has them now (refund id -> status) when
    Stripe can be asked; empty otherwise (the event's snapshot stands)."""
    if not intent or not stripe_client.configured():
        return {}
    return {r["id"]: r.get("status") for r in stripe_client.list_refunds(intent)
            if isinstance(r, dict) and isinstance(r.get("id"), str)}


def _taken(receipt: FundReceipt, obj: dict, key: str, why: str) -> tuple[int | None, str | None]:
    """Take one refund's or lost dispute's amount back from the receipt: (minor units, or None with a problem)."""
    try:
        money = from_stripe_amount(obj.get("amount"), obj.get("currency") or receipt.currency.lower())
    except (MoneyError, TypeError, ValueError, AttributeError) as exc:
        return None, f"{key}: {exc}"
    if money.currency != receipt.currency:
        return None, f"{key} in {money.currency}, the invoice in {receipt.currency}"
    if money.amount_minor <= 0:
        return 0, None
    return funds.take_back(receipt.id, key, money.amount_minor, why=why, actor=ACTOR), None


def invoice_charge_event(event: dict, receipt: FundReceipt) -> Outcome:
    """``charge.refunded`` / ``charge.dispute.*`` on the payment of a fund's
    paid invoice: each refund made at Stripe (not one of ours, succeeded or
    pending, and not failed at Stripe by now) and each lost chargeback takes
    its amount back out of the fund once (:func:`marketplace.funds.service.take_back`);
    one listed failed gives back what it took (:func:`marketplace.funds.service.taken_back_failed`). An open or won
    dispute moves nothing (the money is still, or again, the fund's)."""
    obj = event["data"]["object"]
    problems, notes = [], []
    if event["type"] == "charge.refunded":
        live = None
        for refund in _refunds(obj, receipt.payment_intent_id):
            if refund.get("status") in FAILED_REFUND_STATES:
                row = _return_of(refund)
                if row is not None:  # one of ours, listed as failed: owed again, whichever event comes first
                    notes.append(return_refund_failed(
                        {**refund, "currency": refund.get("currency") or obj.get("currency")}, row))
                elif funds.taken_back_failed(receipt.id, f"refund:{refund['id']}", actor=ACTOR):
                    notes.append(f"refund {refund['id']} failed: given back to fund {receipt.fund_id}")
                continue
            if refund.get("status") not in (None, "succeeded", "pending") or _ours(refund):
                continue
            if live is None:
                live = _live_refund_states(receipt.payment_intent_id)
            if live.get(refund["id"]) in FAILED_REFUND_STATES:
                # An older charge.refunded delivered after the refund's failure: Stripe has the money.
                continue
            taken, problem = _taken(receipt, {**refund, "currency": refund.get("currency") or obj.get("currency")},
                                    f"refund:{refund['id']}", "refunded at Stripe")
            if problem:
                problems.append(problem)
            elif taken:
                notes.append(f"refund {refund['id']}: {taken} taken back from fund {receipt.fund_id}")
    elif obj.get("status") == "lost" and isinstance(obj.get("id"), str):
        taken, problem = _taken(receipt, obj, f"dispute:{obj['id']}", "chargeback lost")
        if problem:
            problems.append(problem)
        elif taken:
            notes.append(f"dispute {obj['id']} lost: {taken} taken back from fund {receipt.fund_id}")
    else:
        return DeliveryStatus.processed, (f"dispute {obj.get('id')} {obj.get('status')!r} on invoice "
                                          f"{receipt.external_id}: nothing moves unless it is lost")
    if problems:
        raise funds.FundError("; ".join(problems))
    return DeliveryStatus.processed, "; ".join(notes) or f"invoice {receipt.external_id}: nothing new taken back"


def apply_fund_refund_event(event: dict, delivery: WebhookDelivery) -> Outcome | None:
    """``refund.updated`` / ``refund.failed`` / ``charge.refund.updated`` about a
    refund that paid a leaving project's return (already validated as a Stripe
    event by the caller); None when the refund is not one of ours (the caller
    goes on). A failed one is owed again (:func:`return_refund_failed`); any
    other status moves nothing (the return was booked when the refund was made)."""
    if event.get("type") not in REFUND_EVENTS:
        return None
    refund = (event.get("data") or {}).get("object")
    if not isinstance(refund, dict) or not isinstance(refund.get("id"), str):
        return None
    row = _return_of(refund)
    if row is None:
        receipt = _receipt_of(refund)
        if receipt is None or refund.get("status") not in FAILED_REFUND_STATES:
            return None
        # A refund made at Stripe on a fund's invoice that failed: what it took back comes back.
        given = funds.taken_back_failed(receipt.id, f"refund:{refund['id']}", actor=ACTOR)
        return DeliveryStatus.processed, (f"refund {refund['id']} on invoice {receipt.external_id} failed: "
                                          f"{given} given back to fund {receipt.fund_id}")
    if refund.get("status") not in FAILED_REFUND_STATES:
        return DeliveryStatus.processed, (f"refund {refund['id']} of return {row.id} {refund.get('status')!r}: "
                                          "nothing moves")
    try:
        return DeliveryStatus.processed, return_refund_failed(refund, row)
    except funds.FundError as exc:
        return DeliveryStatus.failed, f"{exc}: check by hand"[:2000]


def apply_fund_charge_event(event: dict, delivery: WebhookDelivery) -> Outcome | None:
    """A refund or chargeback on the payment of a fund subscription's invoice
    (already validated as a Stripe event by the caller); None when the charge
    is not an invoice payment of ours (the caller goes on). A charge naming an
    invoice whose ``invoice.paid`` has not been applied yet raises
    :class:`NotMatchedYet` (kept and retried: the money must arrive before it
    can be taken back)."""
    if event.get("type") not in CHARGE_EVENTS:
        return None
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        return None
    receipt = _receipt_of(obj)
    if receipt is None:
        invoice = _id_of(obj.get("invoice"))
        if invoice and invoice.startswith("in_"):
            raise NotMatchedYet(f"{obj.get('object') or 'charge'} {obj.get('id')} of invoice {invoice}: "
                                "its invoice.paid is not applied yet")
        return None
    try:
        return invoice_charge_event(event, receipt)
    except funds.FundError as exc:
        return DeliveryStatus.failed, f"{exc}: check by hand"[:2000]
