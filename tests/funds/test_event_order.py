"""Stripe Billing events of a fund subscription in every order, twice, and
before the subscription is known: the fund ends with the same balance and the
subscription in the same state; what cannot be matched yet waits and is
retried, never dropped."""
import itertools

import pytest
from sqlalchemy import select

from marketplace.funds import rails
from marketplace.funds.models import FundReceipt, SubscriptionState
from marketplace.ledger.check import check
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.funds.helpers import fund_balance

FIRST_EVENTS = ("checkout.session.completed", "customer.subscription.created", "invoice.paid")


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=lambda o: "-".join(map(str, o)))
def test_every_order_of_a_subscriptions_first_events_funds_it_once(fw, session, order):
    person = fw.user("sub@example.org")
    sub = fw.subscribe(person, 2000)
    events = fw.first_events(sub)
    assert [event_type for event_type, _obj in events] == list(FIRST_EVENTS)
    for index in order:
        fw.deliver(*events[index])
    # The same invoice.paid once more (Stripe redelivers under a new event id after a timeout).
    fw.deliver(*events[2])
    session.refresh(sub)
    assert (sub.state, fund_balance(fw.fund)) == (SubscriptionState.active, 2000)
    assert sub.stripe_subscription_id == fw.stripe_subscription(sub)
    assert session.scalar(select(FundReceipt.amount_minor).where(FundReceipt.subscription_id == sub.id)) == 2000
    statuses = session.scalars(select(WebhookDelivery.status).where(WebhookDelivery.source == "stripe")).all()
    assert statuses == [DeliveryStatus.processed] * 4
    assert check() == []


def test_the_same_invoice_paid_event_delivered_twice_counts_once(fw, session):
    sub = fw.subscribe(fw.user("twice@example.org"), 1500)
    _session, _created, paid = fw.first_events(sub)
    first = fw.deliver(*paid, event_id="evt_same")
    again = fw.deliver(*paid, event_id="evt_same")
    assert first.id == again.id and first.attempts == 1
    assert fund_balance(fw.fund) == 1500


def test_an_invoice_paid_before_its_subscription_is_known_waits_and_is_retried(app, fw, session):
    """Without Stripe to ask, an invoice that names no subscription of ours is kept, then applied."""
    from jobs.webhooks import retry_waiting_deliveries

    sub = fw.subscribe(fw.user("early@example.org"), 2000)
    checkout, created, paid = fw.first_events(sub)
    paid = {**paid[1], "subscription_details": {"metadata": {}}}  # an older API version's bare invoice
    key = app.config["STRIPE_API_KEY"]
    app.config["STRIPE_API_KEY"] = None
    try:
        waiting = fw.deliver("invoice.paid", paid)
        assert waiting.status is DeliveryStatus.waiting
        assert waiting.outcome.startswith("waiting: no fund subscription for invoice")
        assert fund_balance(fw.fund) == 0
        fw.deliver(*created)
        assert retry_waiting_deliveries() == {"retried": 1, "failed": 0}
    finally:
        app.config["STRIPE_API_KEY"] = key
    session.refresh(waiting)
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.processed, 2)
    fw.deliver(*checkout)
    assert fund_balance(fw.fund) == 2000
    assert check() == []


def test_an_invoice_paid_naming_no_subscription_is_matched_by_asking_stripe(fw, session):
    sub = fw.subscribe(fw.user("ask@example.org"), 900)
    _checkout, _created, paid = fw.first_events(sub)
    bare = {**paid[1], "subscription_details": {"metadata": {}}}
    assert fw.deliver("invoice.paid", bare).status is DeliveryStatus.processed
    assert fund_balance(fw.fund) == 900


def test_a_failed_invoice_moves_nothing_and_tells_the_subscriber_once(fw, session):
    from tests.funds.helpers import mails_to

    sub = fw.subscribe(fw.user("declined@example.org"), 2000)
    fw.start(sub)
    invoice = fw.bill(sub, fail=True)
    fw.deliver("invoice.payment_failed", invoice)  # Stripe's next attempt at the same invoice
    assert fund_balance(fw.fund) == 2000
    assert len(mails_to(session, "declined@example.org")) == 1
    session.refresh(sub)
    assert sub.state is SubscriptionState.active and sub.last_failed_invoice_id == invoice["id"]


def test_a_stale_update_after_a_pause_leaves_it_paused_and_a_deletion_ends_it_for_good(fw, session):
    person = fw.user("pauser@example.org")
    sub = fw.subscribe(person, 2000)
    fw.start(sub)
    stale = dict(fw.stripe.subscriptions[fw.stripe_subscription(sub)])  # active, as it was
    assert rails.pause(sub.id, person=person)
    assert fw.stripe.bill(fw.stripe_subscription(sub), send=False) is None  # no invoice while paused
    fw.deliver("customer.subscription.updated", fw.stripe.subscriptions[fw.stripe_subscription(sub)])
    fw.deliver("customer.subscription.updated", stale)  # older, delivered late
    session.refresh(sub)
    assert sub.state is SubscriptionState.paused
    assert rails.resume(sub.id, person=person)
    fw.bill(sub)
    assert fund_balance(fw.fund) == 4000
    deleted = {**fw.stripe.subscriptions[fw.stripe_subscription(sub)], "status": "canceled"}
    fw.deliver("customer.subscription.deleted", deleted)
    fw.deliver("customer.subscription.updated", stale)
    session.refresh(sub)
    assert sub.state is SubscriptionState.ended


def test_an_invoice_of_another_product_on_the_stripe_account_is_ignored_not_kept_waiting(fw, session):
    sub = fw.subscribe(fw.user("other@example.org"), 700)
    _checkout, _created, paid = fw.first_events(sub)
    fw.stripe.subscriptions[fw.stripe_subscription(sub)]["metadata"] = {}  # another product's subscription
    bare = {**paid[1], "subscription_details": {"metadata": {}}}
    delivery = fw.deliver("invoice.paid", bare)
    assert (delivery.status, delivery.outcome) == (
        DeliveryStatus.ignored, f"{fw.stripe_subscription(sub)} names no fund subscription: not a project fund's")
    one_off = {"id": "in_one_off", "object": "invoice", "amount_paid": 500, "currency": "usd", "subscription": None}
    assert fw.deliver("invoice.paid", one_off).status is DeliveryStatus.ignored
    assert fund_balance(fw.fund) == 0
