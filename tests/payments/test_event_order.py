"""Stripe events in any order, through the real stripe library and the local
Stripe stand-in: the pledge id travels on the Checkout Session, the
PaymentIntent and the charge, so every event finds its pledge whatever
arrived before it; what cannot be matched yet waits and is tried again."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.accounts.helpers import signup
from tests.payments.fake_stripe import FakeStripe
from tests.payments.test_checkout import pledge_through_the_page
from tests.payments.test_stripe_events import post_event


@pytest.fixture
def stripe_server(app):
    fake = FakeStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=fake.url)
    yield fake
    app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    fake.stop()


def an_item(session) -> BacklogItem:
    return session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))


def a_paid_card_pledge(client, session, stripe_server, amount: str = "50.00") -> tuple[Pledge, dict]:
    """A card pledge through the item page, paid on the local Stripe; no event delivered yet."""
    signup(client, "funder@example.org")
    pledge_through_the_page(client, an_item(session), amount)
    pledge = session.scalars(select(Pledge)).one()
    return pledge, stripe_server.pay(pledge.checkout_session_id)


def escrow(pledge: Pledge) -> int:
    return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=pledge.item_id), pledge.currency)


def final_state(session, pledge: Pledge) -> tuple:
    pledge = session.get(Pledge, pledge.id)
    session.refresh(pledge)
    return (pledge.state, pledge.refunded_minor, escrow(pledge),
            ledger.balance(ledger.account(AccountKind.refunds), "USD"))


def test_the_pledge_id_travels_on_the_session_the_payment_intent_and_the_charge(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    _, _, form, _ = stripe_server.requests[0]
    assert (form["client_reference_id"], form["payment_intent_data[metadata][pledge_id]"]) == (str(pledge.id),) * 2
    assert (paid["client_reference_id"], paid["metadata"]) == (str(pledge.id), {"pledge_id": str(pledge.id)})
    intent = stripe_server.payment_intents[paid["payment_intent"]]
    charge = stripe_server.charge_of(paid["payment_intent"])
    assert intent["metadata"] == charge["metadata"] == {"pledge_id": str(pledge.id)}
    assert charge["payment_intent"] == intent["id"]


@pytest.mark.parametrize("order", ["refund first", "natural order"])
def test_a_full_refund_delivered_before_the_completion_leaves_the_pledge_refunded(client, session, stripe_server,
                                                                                  order):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    assert pledge.amount_minor == 5000 and pledge.currency == "USD"
    # Refunded in full (say, from Stripe's dashboard) before any event reached us.
    stripe_server.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dashboard-1")
    refunded = stripe_server.charge_of(paid["payment_intent"])
    assert (refunded["amount_refunded"], refunded["refunded"]) == (5000, True)
    events = [("charge.refunded", refunded, "evt_refund"), ("checkout.session.completed", paid, "evt_completed")]
    for event_type, obj, event_id in (events if order == "refund first" else reversed(events)):
        assert post_event(client, event_type, obj, event_id).status_code == 202
    assert final_state(session, pledge) == (PledgeState.refunded, 5000, 0, 5000)
    assert session.get(ItemFunding, (pledge.item_id, "USD")).pending_minor == 0
    statuses = session.execute(select(WebhookDelivery.delivery_id, WebhookDelivery.status)).all()
    assert sorted(statuses) == [("evt_completed", DeliveryStatus.processed), ("evt_refund", DeliveryStatus.processed)]
    assert check() == []


def test_a_completion_after_a_refund_whose_event_was_lost_reads_the_charge_first(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    stripe_server.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dashboard-1")
    # charge.refunded never arrives (or arrives days later): the completion alone must not hold refunded money.
    post_event(client, "checkout.session.completed", paid, "evt_completed")
    assert final_state(session, pledge) == (PledgeState.refunded, 5000, 0, 5000)
    assert ("GET", f"/v1/payment_intents/{paid['payment_intent']}") in [r[:2] for r in stripe_server.requests]
    assert check() == []


def test_a_completion_after_a_chargeback_opened_holds_the_pledge_disputed(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    stripe_server.dispute(paid["payment_intent"])
    post_event(client, "checkout.session.completed", paid, "evt_completed")
    pledge = session.get(Pledge, pledge.id)
    session.refresh(pledge)
    assert (pledge.state, escrow(pledge)) == (PledgeState.disputed, 5000)
    assert check() == []


def test_a_dispute_before_the_completion_is_matched_by_asking_stripe_for_its_payment(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    # A dispute names only the PaymentIntent and the charge; we have not learnt the PaymentIntent yet.
    dispute = stripe_server.dispute(paid["payment_intent"])
    assert dispute["metadata"] == {} and session.get(Pledge, pledge.id).payment_intent_id is None
    post_event(client, "charge.dispute.created", dispute, "evt_dispute")
    pledge = session.get(Pledge, pledge.id)
    session.refresh(pledge)
    assert (pledge.state, pledge.payment_intent_id, escrow(pledge)) == (PledgeState.disputed, paid["payment_intent"],
                                                                      5000)
    post_event(client, "checkout.session.completed", paid, "evt_completed")
    session.refresh(pledge)
    assert (pledge.state, escrow(pledge)) == (PledgeState.disputed, 5000)
    assert check() == []


def test_an_event_that_cannot_be_matched_waits_shows_on_the_admin_page_and_is_retried(app, client, session):
    """Without Stripe to ask, a dispute arriving before its payment cannot be placed: it is kept, not dropped."""
    from jobs.webhooks import retry_waiting_deliveries
    from tests.payments.test_stripe_events import a_pledge, session_object

    pledge = a_pledge(session, 5000)
    dispute = {"id": "dp_early", "object": "dispute", "amount": 5000, "currency": "usd", "metadata": {},
               "payment_intent": f"pi_test_{pledge.id}", "charge": f"ch_test_{pledge.id}", "status": "needs_response"}
    assert post_event(client, "charge.dispute.created", dispute, "evt_early").status_code == 202
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "evt_early"))
    assert delivery.status is DeliveryStatus.waiting and delivery.attempts == 1
    assert delivery.outcome == f"waiting: no pledge for dispute dp_early (pi_test_{pledge.id}) yet"
    admin = _admin(session)
    page = _as(app, admin).get("/admin/deliveries?status=waiting").get_data(as_text=True)
    assert "evt_early" in page and f"waiting: no pledge for dispute dp_early (pi_test_{pledge.id}) yet" in page
    assert "1 waiting for what it is about" in _as(app, admin).get("/admin/").get_data(as_text=True)
    # The payment arrives; the cron pass tries the waiting event again, and it applies.
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_paid")
    assert retry_waiting_deliveries() == {"retried": 1, "failed": 0}
    session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.processed, 2)
    assert session.get(Pledge, pledge.id).state is PledgeState.disputed
    assert check() == []


def test_a_delivery_still_unmatched_after_the_waiting_days_is_failed_for_a_person(client, session):
    from jobs.webhooks import retry_waiting_deliveries

    charge = {"id": "ch_elsewhere", "object": "charge", "amount": 700, "currency": "usd", "paid": True,
              "status": "succeeded", "payment_intent": "pi_unknown", "metadata": {"pledge_id": "999999"},
              "amount_refunded": 700, "refunds": {"data": [{"id": "re_x", "amount": 700, "status": "succeeded"}]}}
    post_event(client, "charge.refunded", charge, "evt_orphan")
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "evt_orphan"))
    assert delivery.status is DeliveryStatus.waiting
    delivery.received_at -= timedelta(days=3, minutes=1)
    session.commit()
    assert retry_waiting_deliveries() == {"retried": 0, "failed": 1}
    session.refresh(delivery)
    assert delivery.status is DeliveryStatus.failed
    assert delivery.outcome.startswith("never matched in 3 days; check it, then replay (waiting: no pledge for "
                                       "charge ch_elsewhere (pledge id 999999) (pi_unknown) yet)")


def test_a_payment_stripe_says_is_not_a_pledge_is_ignored_not_kept_waiting(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    stripe_server.payment_intents[paid["payment_intent"]]["metadata"] = {}  # e.g. another product on the account
    charge = stripe_server.charge_of(paid["payment_intent"])
    charge["metadata"] = {}
    post_event(client, "charge.refunded", charge, "evt_other")
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "evt_other"))
    assert (delivery.status, delivery.outcome) == (DeliveryStatus.ignored,
                                                   f"{paid['payment_intent']} carries no pledge id: "
                                                   "not a pledge's payment")


def _admin(session):
    from marketplace.accounts.models import User
    from marketplace.timeutil import utcnow

    admin = User(display_name="Host", is_admin=True, email_verified_at=utcnow())
    admin.set_email("host@example.org")
    session.add(admin)
    session.commit()
    return admin


def _as(app, user):
    client = app.test_client()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
        flask_session["_fresh"] = True
    return client


def test_a_waiting_delivery_goes_back_to_rq_with_backoff(app, client, session, rq_redis):
    from rq import Queue, SimpleWorker
    from rq.registry import ScheduledJobRegistry

    from tests.payments.test_stripe_events import a_pledge

    pledge = a_pledge(session, 5000)
    dispute = {"id": "dp_rq", "object": "dispute", "amount": 5000, "currency": "usd", "metadata": {},
               "payment_intent": f"pi_test_{pledge.id}", "status": "needs_response"}
    post_event(client, "charge.dispute.created", dispute, "evt_rq")
    queue = Queue("webhooks", connection=rq_redis)
    assert queue.count == 1 and queue.jobs[0].retries_left == 3
    with app.app_context():
        SimpleWorker([queue], connection=rq_redis).work(burst=True)
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "evt_rq"))
    session.refresh(delivery)
    assert delivery.status is DeliveryStatus.waiting
    # RQ keeps the job for its next try, 10 seconds later (then 60, then 300; then the cron pass).
    scheduled = ScheduledJobRegistry("webhooks", connection=rq_redis).get_job_ids()
    assert len(scheduled) == 1
    assert queue.fetch_job(scheduled[0]).retries_left == 2


def test_a_checkout_that_is_not_the_pledges_own_is_failed_for_a_person(client, session):
    from tests.payments.test_stripe_events import a_pledge, session_object

    pledge = a_pledge(session, 5000)
    other = session_object(pledge, "paid")
    other["id"] = "cs_test_another_deployment"
    post_event(client, "checkout.session.completed", other, "evt_other_session")
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "evt_other_session"))
    assert delivery.status is DeliveryStatus.failed
    assert delivery.outcome == (f"session cs_test_another_deployment names pledge {pledge.id}, whose Checkout is "
                                f"cs_test_{pledge.id}: check by hand")
    assert session.get(Pledge, pledge.id).state is PledgeState.pending


def test_the_local_stripe_dashboard_expires_a_checkout_and_fails_a_refund(client, session, stripe_server):
    import urllib.request

    signup(client, "funder@example.org")
    pledge_through_the_page(client, an_item(session), "50.00")
    pledge_through_the_page(client, an_item(session), "20.00")
    unpaid, paid = session.scalars(select(Pledge).order_by(Pledge.id)).all()
    intent = stripe_server.pay(paid.checkout_session_id)["payment_intent"]
    refund = stripe_server.create_refund({"payment_intent": intent, "amount": "2000"}, "dash")
    page = urllib.request.urlopen(f"{stripe_server.url}/dashboard").read().decode()
    assert f"/dashboard/expire/{unpaid.checkout_session_id}" in page and f"/dashboard/fail-refund/{refund['id']}" in page
    for path in (f"/dashboard/expire/{unpaid.checkout_session_id}", f"/dashboard/fail-refund/{refund['id']}"):
        urllib.request.urlopen(urllib.request.Request(f"{stripe_server.url}{path}", data=b"", method="POST"))
    assert stripe_server.sessions[unpaid.checkout_session_id]["status"] == "expired"
    assert stripe_server.charge_of(intent)["amount_refunded"] == 0
    assert next(iter(stripe_server.refunds.values()))["status"] == "failed"
