"""Attacks on the Stripe money handlers (a break session after issue 10):
signed events of the wrong shape, events that contradict our books, and
objects that name another pledge. Each ends in a clear outcome on the
delivery and leaves no partial effect; the ledger check passes after each."""

import pytest
from sqlalchemy import func, select

from marketplace.backlog.models import ItemFunding
from marketplace.ledger.models import LedgerTransaction
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.payments.test_stripe_events import a_pledge, escrow, post_event, session_object


def _delivery(session, event_id: str) -> WebhookDelivery:
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == event_id))


def _unchanged(session, pledge: Pledge) -> tuple:
    session.refresh(pledge)
    return (pledge.state, pledge.refunded_minor, escrow(pledge),
            session.get(ItemFunding, (pledge.item_id, "USD")).pending_minor,
            session.scalar(select(func.count()).select_from(LedgerTransaction)))


def _charge(pledge: Pledge, **changes) -> dict:
    charge = {"id": f"ch_test_{pledge.id}", "object": "charge", "amount": 5000, "currency": "usd", "paid": True,
              "status": "succeeded", "payment_intent": f"pi_test_{pledge.id}",
              "metadata": {"pledge_id": str(pledge.id)}, "amount_refunded": 2000, "refunded": False,
              "refunds": {"object": "list", "has_more": False, "data": [
                  {"id": "re_break_1", "object": "refund", "amount": 2000, "currency": "usd",
                   "status": "succeeded", "created": 1}]}}
    charge.update(changes)
    return charge


MALFORMED_SESSIONS = {
    "metadata is a list": ({"metadata": ["pledge_id"]}, "data.object.metadata: Input should be a valid dictionary"),
    "amount as a string": ({"amount_total": "5000"}, "data.object.amount_total: Input should be a valid integer"),
    "amount as a float": ({"amount_total": 5000.0}, "data.object.amount_total: Input should be a valid integer"),
    "amount as true": ({"amount_total": True}, "data.object.amount_total: Input should be a valid integer"),
    "negative amount": ({"amount_total": -5000},
                        "data.object.amount_total: Input should be greater than or equal to 0"),
    "huge amount": ({"amount_total": 10**40},
                    "data.object.amount_total: Input should be less than or equal to 1000000000000000"),
    "currency not a code": ({"currency": "xx"},
                            "data.object.currency: String should match pattern '^[A-Za-z]{3}$'"),
    "session id a number": ({"id": 7}, "data.object.id: Input should be a valid string"),
    "payment intent a number": ({"payment_intent": 7}, "data.object.payment_intent"),
}


@pytest.mark.parametrize("case", list(MALFORMED_SESSIONS))
def test_a_signed_completion_of_the_wrong_shape_is_malformed_and_holds_nothing(client, session, case):
    pledge = a_pledge(session, 5000)
    before = _unchanged(session, pledge)
    change, problem = MALFORMED_SESSIONS[case]
    paid = session_object(pledge, "paid")
    paid.update(change)
    assert post_event(client, "checkout.session.completed", paid, "evt_bad").status_code == 202
    delivery = _delivery(session, "evt_bad")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.malformed, 1)
    assert delivery.outcome.startswith(f"malformed checkout.session.completed event: {problem}")
    assert _unchanged(session, pledge) == before == (PledgeState.pending, 0, 0, 5000, before[4])


@pytest.mark.parametrize("data", [None, [], "x", {}, {"object": None}])
def test_a_signed_event_without_an_object_is_malformed(client, session, data):
    pledge = a_pledge(session, 5000)
    obj = data.get("object") if isinstance(data, dict) else data
    assert post_event(client, "charge.refunded", obj, "evt_empty").status_code == 202
    delivery = _delivery(session, "evt_empty")
    assert delivery.status is DeliveryStatus.malformed
    assert delivery.outcome.startswith("malformed charge.refunded event: data.object")
    assert _unchanged(session, pledge)[:4] == (PledgeState.pending, 0, 0, 5000)


@pytest.mark.parametrize("refunds, problem", [
    ({"data": [None]}, "data.object.refunds.data.0: Input should be a valid dictionary or instance of StripeRefund"),
    ({"data": [{"amount": 2000, "currency": "usd", "status": "succeeded"}]},
     "data.object.refunds.data.0.id: Field required"),
    ({"data": [{"id": "re_neg", "amount": -2000, "currency": "usd", "status": "succeeded"}]},
     "data.object.refunds.data.0.amount: Input should be greater than or equal to 0"),
    ({"data": [{"id": "re_str", "amount": "2000", "currency": "usd", "status": "succeeded"}]},
     "data.object.refunds.data.0.amount: Input should be a valid integer"),
])
def test_a_charge_refunded_with_a_bad_refund_list_changes_nothing(client, session, refunds, problem):
    pledge = a_pledge(session, 5000)
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_paid")
    before = _unchanged(session, pledge)
    assert before[:4] == (PledgeState.held, 0, 5000, 0)
    post_event(client, "charge.refunded", _charge(pledge, refunds=refunds), "evt_bad_refunds")
    delivery = _delivery(session, "evt_bad_refunds")
    assert delivery.status is DeliveryStatus.malformed
    assert delivery.outcome == f"malformed charge.refunded event: {problem}"
    assert _unchanged(session, pledge) == before


@pytest.mark.parametrize("change, message", [
    ({"amount_total": 4999}, "$49.99 arrived, $50.00 was pledged. Nothing is held.: check by hand"),
    ({"currency": "eur"}, "€50.00 arrived, $50.00 was pledged. Nothing is held.: check by hand"),
])
def test_a_completion_for_another_amount_or_currency_fails_once_for_a_person(client, session, change, message):
    """Not an error to retry three times (the answer cannot change): a failed delivery on the admin page."""
    pledge = a_pledge(session, 5000)
    paid = session_object(pledge, "paid")
    paid.update(change)
    post_event(client, "checkout.session.completed", paid, "evt_other")
    delivery = _delivery(session, "evt_other")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.failed, 1)
    assert delivery.outcome == f"Pledge {pledge.id}: {message}"
    assert _unchanged(session, pledge)[:4] == (PledgeState.pending, 0, 0, 5000)
    # The same payment, as pledged, still holds it afterwards.
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_right")
    assert _unchanged(session, pledge)[:4] == (PledgeState.held, 0, 5000, 0)


def test_a_refund_event_that_fails_halfway_leaves_no_hold_behind(client, session):
    """charge.refunded first (holds the pledge from its charge), listing a refund in
    another currency: refused for a person, and the hold it made is undone with it
    (it was committed before, beside a 'failed' delivery: money held that Stripe refunded)."""
    pledge = a_pledge(session, 5000)
    charge = _charge(pledge, refunds={"data": [
        {"id": "re_usd", "amount": 2000, "currency": "usd", "status": "succeeded", "created": 1},
        {"id": "re_jpy", "amount": 3000, "currency": "jpy", "status": "succeeded", "created": 2}]})
    post_event(client, "charge.refunded", charge, "evt_mixed")
    delivery = _delivery(session, "evt_mixed")
    assert delivery.status is DeliveryStatus.failed
    assert delivery.outcome == f"pledge {pledge.id}: refunds refused for a person to check: re_jpy (JPY, pledge in USD)"
    assert _unchanged(session, pledge)[:4] == (PledgeState.pending, 0, 0, 5000)
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


def test_an_object_naming_one_pledge_with_another_pledges_payment_changes_neither(client, session):
    """The pledge id in metadata points at someone else's unpaid pledge, the
    PaymentIntent is a paid pledge's: before, the unpaid pledge took the
    PaymentIntent (a unique-constraint crash retried three times); now a
    failed delivery for a person, and neither pledge moves."""
    paid_pledge = a_pledge(session, 5000)
    post_event(client, "checkout.session.completed", session_object(paid_pledge, "paid"), "evt_paid")
    other = a_pledge(session, 5001)  # another funder's pledge, never paid
    charge = _charge(paid_pledge, metadata={"pledge_id": str(other.id)})
    post_event(client, "charge.refunded", charge, "evt_crossed")
    delivery = _delivery(session, "evt_crossed")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.failed, 1)
    assert delivery.outcome == (f"pi_test_{paid_pledge.id} names pledge {other.id}, but it is pledge "
                                f"{paid_pledge.id}'s payment: check by hand")
    session.refresh(other)
    assert (other.state, other.payment_intent_id) == (PledgeState.pending, None)
    assert _unchanged(session, paid_pledge)[:3] == (PledgeState.held, 0, 5000)


def test_a_pledge_id_beyond_our_ids_is_no_pledge_id_and_the_payment_intent_decides(client, session):
    pledge = a_pledge(session, 5000)
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_paid")
    charge = _charge(pledge, metadata={"pledge_id": "9" * 18})
    post_event(client, "charge.refunded", charge, "evt_big_id")
    assert _delivery(session, "evt_big_id").status is DeliveryStatus.processed
    assert _unchanged(session, pledge)[:3] == (PledgeState.partially_refunded, 2000, 3000)


def _bank_pledge_and_host(app, client, session):
    from marketplace.accounts.models import User
    from marketplace.timeutil import utcnow
    from tests.accounts.helpers import signup
    from tests.payments.test_checkout import an_item, pledge_through_the_page

    signup(client, "funder@example.org")
    pledge_through_the_page(client, an_item(session), "40.00", rail="bank_transfer")
    pledge = session.scalars(select(Pledge)).one()
    host = User(display_name="Host", is_admin=True, email_verified_at=utcnow())
    host.set_email("host@example.org")
    session.add(host)
    session.commit()
    admin = app.test_client()
    with admin.session_transaction() as flask_session:
        flask_session["_user_id"] = host.get_id()
    return pledge, admin


def _confirm(admin, pledge: Pledge) -> str:
    from tests.accounts.helpers import csrf

    token = csrf(admin, "/admin/pledges")
    return admin.post(f"/admin/pledges/{pledge.id}/confirm", follow_redirects=True,
                      data={"csrf_token": token, "amount": "40.00", "received_on": "2026-11-20",
                            "reference": "BANK-9"}).get_data(as_text=True)


def test_a_bank_transfer_confirmed_after_the_cron_cancelled_it_is_refused_not_called_held(app, client, session):
    """The expiry cron cancelled the unpaid transfer pledge (30 days), then its money
    arrived and the fiscal host confirms it. Before: nothing was held, and the page
    said "Pledge 1 is held: $40.00." Now a clear refusal; nothing is posted."""
    from datetime import timedelta

    from marketplace.pledges import service as pledges
    from marketplace.timeutil import utcnow

    pledge, admin = _bank_pledge_and_host(app, client, session)
    assert pledges.expire_unpaid(utcnow() + timedelta(days=31)) == [pledge.id]
    session.commit()
    page = _confirm(admin, pledge)
    assert (f"Pledge {pledge.id} was cancelled before its money arrived: nothing is held. Send the transfer back, "
            "or ask the funder to pledge again.") in page
    assert f"Pledge {pledge.id} is held" not in page
    session.refresh(pledge)
    assert (pledge.state, escrow(pledge)) == (PledgeState.cancelled, 0)
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


def test_a_bank_transfer_confirmed_twice_says_so_the_second_time_and_holds_once(app, client, session):
    pledge, admin = _bank_pledge_and_host(app, client, session)
    assert f"Pledge {pledge.id} is held: $40.00." in _confirm(admin, pledge)
    page = _confirm(admin, pledge)
    assert f"Pledge {pledge.id} was confirmed already: nothing changed." in page
    session.refresh(pledge)
    assert (pledge.state, escrow(pledge)) == (PledgeState.held, 4000)
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1


def test_a_failed_refund_named_for_another_pledge_never_gives_that_pledge_the_money(client, session):
    """Pledge A's 50.00 refund re_a fails, but the refund object names pledge B
    (metadata) and no PaymentIntent. B's funder had their own 50.00 back already:
    before, B was held again with A's money (B's funder would have had it twice)
    and A stayed refunded. Now: failed for a person, nothing moves."""
    from marketplace.pledges import service as pledges

    a, b = a_pledge(session, 5000), a_pledge(session, 5001)
    post_event(client, "checkout.session.completed", session_object(a, "paid"), "evt_paid_a")
    post_event(client, "checkout.session.completed", session_object(b, "paid"), "evt_paid_b")
    assert pledges.refund(a.id, 5000, refund_id="re_a", actor="stripe")
    assert pledges.refund(b.id, 5001, refund_id="re_b", actor="stripe")
    session.commit()
    refund = {"id": "re_a", "object": "refund", "amount": 5000, "currency": "usd", "status": "failed",
              "failure_reason": "expired_or_canceled_card", "payment_intent": None,
              "metadata": {"pledge_id": str(b.id)}}
    post_event(client, "refund.failed", refund, "evt_misnamed")
    delivery = _delivery(session, "evt_misnamed")
    assert (delivery.status, delivery.outcome) == (
        DeliveryStatus.failed, f"refund re_a was not applied to pledge {b.id}: check by hand")
    for pledge, refunded in ((a, 5000), (b, 5001)):
        session.refresh(pledge)
        assert (pledge.state, pledge.refunded_minor) == (PledgeState.refunded, refunded)
    assert escrow(a) == 0
    # Named for its own pledge, the same failure gives A its 50.00 back, once.
    refund["metadata"] = {"pledge_id": str(a.id)}
    post_event(client, "refund.failed", refund, "evt_named_right")
    session.refresh(a)
    assert (a.state, a.refunded_minor, escrow(a)) == (PledgeState.held, 0, 5000)
