"""The card rail of fund subscriptions: Stripe Billing through
:mod:`marketplace.payments.stripe_client` (Checkout in subscription mode,
pause, resume and cancel), and the card refunds of a leaving project's
fund. What Stripe says afterwards arrives as webhook events
(:mod:`marketplace.payments.fund_events`), in any order. Services flush,
never commit.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.funds.models import (
    FundReceipt,
    FundReturn,
    FundReturnState,
    FundSubscription,
    SubscriptionRail,
    SubscriptionState,
)
from marketplace.funds.service import FundError, book_return, set_cancelled, set_paused
from marketplace.money import Money
from marketplace.payments import stripe_client


def start_checkout(sub: FundSubscription, *, success_url: str, cancel_url: str, locale: str = "auto") -> str:
    """Open (or find again) the Stripe Checkout of a pending card subscription;
    returns the URL to send the subscriber to. Raises ``PaymentRefused`` /
    ``PaymentsUnavailable`` (nothing recorded), :class:`FundError` when the
    subscription is not a pending card one."""
    if sub.rail is not SubscriptionRail.card or sub.state is not SubscriptionState.pending:
        raise FundError(_("This subscription is not waiting for a card payment."))
    session_id, url = stripe_client.create_subscription_checkout_session(
        sub.id, Money(sub.amount_minor, sub.currency),
        product=_("Monthly support of %(project)s", project=sub.fund.project.name),
        success_url=success_url, cancel_url=cancel_url, locale=locale)
    sub.checkout_session_id = session_id
    db.session.flush()
    return url


def _own(sub_id: int, person: User) -> FundSubscription:
    sub = db.session.get(FundSubscription, sub_id, with_for_update=True, populate_existing=True)
    if sub is None or (sub.subscriber_id != person.id and not person.is_admin):
        raise FundError(_("No such subscription."))
    return sub


def pause(sub_id: int, *, person: User) -> bool:
    """The subscriber pauses: no invoice is charged until they resume (Stripe's
    ``pause_collection`` for a card; a transfer: they pause their standing
    order, and we record it). Raises :class:`FundError` unless active,
    ``PaymentsUnavailable`` (nothing changes)."""
    sub = _own(sub_id, person)
    if sub.state is not SubscriptionState.active:
        raise FundError(_("Only an active subscription can be paused."))
    if sub.rail is SubscriptionRail.card and sub.stripe_subscription_id:
        stripe_client.pause_subscription(sub.stripe_subscription_id, True)
    return set_paused(sub, True, actor=f"user:{person.id}", actor_user_id=person.id)


def resume(sub_id: int, *, person: User) -> bool:
    """The subscriber resumes a paused subscription. Raises as :func:`pause`."""
    sub = _own(sub_id, person)
    if sub.state is not SubscriptionState.paused:
        raise FundError(_("Only a paused subscription can be resumed."))
    if sub.rail is SubscriptionRail.card and sub.stripe_subscription_id:
        stripe_client.pause_subscription(sub.stripe_subscription_id, False)
    return set_paused(sub, False, actor=f"user:{person.id}", actor_user_id=person.id)


def cancel(sub_id: int, *, person: User) -> bool:
    """The subscriber cancels: no more invoices (the card subscription is
    cancelled at Stripe first; a pending Checkout is expired). What the fund
    received stays the fund's. Raises :class:`FundError` when it is over
    already, ``PaymentsUnavailable`` (nothing changes)."""
    sub = _own(sub_id, person)
    if sub.state not in (SubscriptionState.pending, SubscriptionState.active, SubscriptionState.paused):
        raise FundError(_("This subscription is over already."))
    if sub.rail is SubscriptionRail.card:
        if sub.stripe_subscription_id:
            stripe_client.cancel_subscription(sub.stripe_subscription_id)
        elif sub.checkout_session_id:
            closed = stripe_client.expire_checkout_session(sub.checkout_session_id)
            if closed.get("status") == "complete" and isinstance(closed.get("subscription"), str):
                # Paid meanwhile: the subscription exists at Stripe; cancel it there too.
                stripe_client.cancel_subscription(closed["subscription"])
    return set_cancelled(sub, actor=f"user:{person.id}", actor_user_id=person.id)


def end_at_stripe(fund_id: int) -> list[int]:
    """After a fund closed: each card subscription of it that Stripe still
    bills is cancelled there (idempotent). Returns the subscription ids asked.
    Raises ``PaymentsUnavailable`` (the rest is tried again next time)."""
    asked = []
    for sub in db.session.scalars(select(FundSubscription).where(
            FundSubscription.fund_id == fund_id, FundSubscription.rail == SubscriptionRail.card,
            FundSubscription.stripe_subscription_id.is_not(None)).order_by(FundSubscription.id)):
        current = stripe_client.retrieve_subscription(sub.stripe_subscription_id)
        if current.get("status") != "canceled":
            stripe_client.cancel_subscription(sub.stripe_subscription_id)
            asked.append(sub.id)
    return asked


def refund_return(return_id: int) -> bool:
    """A due return of a card subscription is refunded at Stripe on the
    payments of its invoices, newest first (each refund keyed
    ``fund-return-<id>-<receipt id>``, so a retry after no answer makes the
    same refunds), then booked. Returns whether this call booked it.
    Raises ``PaymentsUnavailable`` (retry: the same keys), :class:`FundError`
    when its invoices hold less than the return (the fiscal host returns it another way)."""
    row = db.session.get(FundReturn, return_id)
    if row is None or row.state is not FundReturnState.due:
        return False
    if row.rail is not SubscriptionRail.card:
        raise FundError(_("Bank transfers are returned by the fiscal host."))
    receipts = list(db.session.scalars(select(FundReceipt).where(
        FundReceipt.subscription_id == row.subscription_id, FundReceipt.payment_intent_id.is_not(None))
        .order_by(FundReceipt.received_at.desc(), FundReceipt.id.desc()).with_for_update()))
    left, plan = row.amount_minor, []
    for receipt in receipts:
        take = min(left, receipt.amount_minor - receipt.refunded_minor)
        if take > 0:
            plan.append((receipt, take))
            left -= take
    if left > 0:
        raise FundError(_("The subscriber's card payments hold less than the return; send it another way."))
    refund_ids = []
    for receipt, take in plan:
        refund_ids.append(stripe_client.create_refund(
            receipt.payment_intent_id, Money(take, row.currency), idempotency_key=f"fund-return-{row.id}-{receipt.id}",
            metadata={"fund_return_id": row.id}))
    for receipt, take in plan:
        receipt.refunded_minor += take
    booked = book_return(row, ", ".join(refund_ids))
    if booked:
        audit.record("fund.returned", "fund_return", row.id, actor="stripe",
                     details={"refunds": refund_ids, "amount_minor": row.amount_minor})
    return booked
