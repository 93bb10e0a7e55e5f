"""Stripe webhooks move pledge money: signed with the test secret exactly as Stripe signs."""
import copy
import hashlib
import hmac
import json
import time

from sqlalchemy import func, select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import FIXTURES, STRIPE_SECRET


def stripe_object(name: str) -> dict:
    return copy.deepcopy(json.loads((FIXTURES / "stripe" / f"{name}.json").read_text()))


def post_event(client, event_type: str, obj: dict, event_id: str, secret: str = STRIPE_SECRET):
    event = {"id": event_id, "object": "event", "api_version": "2024-06-20", "created": int(time.time()),
             "type": event_type, "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
             "request": {"id": None, "idempotency_key": None}}
    payload = json.dumps(event)
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return client.post("/webhooks/stripe", data=payload,
                       headers={"Stripe-Signature": f"t={timestamp},v1={signature}",
                                "Content-Type": "application/json"})


def a_pledge(session, amount: int, currency: str = "USD") -> Pledge:
    user = User(display_name="Funder")
    user.set_email(f"funder{amount}@example.org")
    session.add(user)
    session.flush()
    item = session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
    pledge = pledges.create(item, user.id, Money(amount, currency), rail=Rail.card, actor="test")
    pledge.checkout_session_id = f"cs_test_{pledge.id}"
    session.commit()
    return pledge


def session_object(pledge: Pledge, payment_status: str) -> dict:
    obj = stripe_object("checkout.session")
    obj.update(id=pledge.checkout_session_id, amount_total=pledge.amount_minor, currency=pledge.currency.lower(),
               payment_status=payment_status, status="complete", payment_intent=f"pi_test_{pledge.id}",
               client_reference_id=str(pledge.id), metadata={"pledge_id": str(pledge.id)})
    return obj


def escrow(pledge: Pledge) -> int:
    return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=pledge.item_id), pledge.currency)


def test_completed_checkout_delivered_twice_and_another_event_hold_one_pledge_once(client, session):
    pledge = a_pledge(session, 5000)
    paid = session_object(pledge, "paid")
    assert post_event(client, "checkout.session.completed", paid, "evt_1").status_code == 202
    assert post_event(client, "checkout.session.completed", paid, "evt_1").status_code == 200  # redelivery
    intent = {"id": f"pi_test_{pledge.id}", "object": "payment_intent", "amount": 5000, "currency": "usd"}
    assert post_event(client, "payment_intent.succeeded", intent, "evt_2").status_code == 202
    # Stripe sends the completion again under another event id (it happens): nothing more.
    assert post_event(client, "checkout.session.completed", paid, "evt_3").status_code == 202
    pledge = session.get(Pledge, pledge.id)
    assert pledge.state is PledgeState.held and escrow(pledge) == 5000
    assert session.scalar(select(func.count()).select_from(Pledge)) == 1
    outcomes = dict(session.execute(select(WebhookDelivery.delivery_id, WebhookDelivery.outcome)).all())
    assert outcomes == {"evt_1": f"pledge {pledge.id} held",
                        "evt_2": "Stripe event 'payment_intent.succeeded' not handled",
                        "evt_3": f"pledge {pledge.id} was held already"}
    assert check() == []


def test_sepa_debit_is_processing_until_it_settles(client, session):
    pledge = a_pledge(session, 5000, "EUR")
    post_event(client, "checkout.session.completed", session_object(pledge, "unpaid"), "evt_sepa_1")
    pledge = session.get(Pledge, pledge.id)
    funding = session.get(ItemFunding, (pledge.item_id, "EUR"))
    assert pledge.state is PledgeState.processing
    assert (funding.pending_minor, funding.held_minor) == (5000, 0)  # not funded yet
    post_event(client, "checkout.session.async_payment_succeeded", session_object(pledge, "paid"), "evt_sepa_2")
    session.refresh(funding)
    assert session.get(Pledge, pledge.id).state is PledgeState.held
    assert (funding.pending_minor, funding.held_minor) == (0, 5000)
    assert session.scalar(select(func.count()).select_from(Pledge)) == 1
    assert check() == []


def test_sepa_debit_that_fails_is_never_funded(client, session):
    pledge = a_pledge(session, 5000, "EUR")
    post_event(client, "checkout.session.completed", session_object(pledge, "unpaid"), "evt_f_1")
    post_event(client, "checkout.session.async_payment_failed", session_object(pledge, "unpaid"), "evt_f_2")
    # A late success after the failure moves nothing.
    post_event(client, "checkout.session.async_payment_succeeded", session_object(pledge, "paid"), "evt_f_3")
    pledge = session.get(Pledge, pledge.id)
    funding = session.get(ItemFunding, (pledge.item_id, "EUR"))
    assert pledge.state is PledgeState.failed
    assert (funding.pending_minor, funding.held_minor) == (0, 0)
    assert escrow(pledge) == 0


def _charge(pledge: Pledge, refunds: list[tuple[str, int]]) -> dict:
    charge = stripe_object("charge")
    charge.update(id=f"ch_test_{pledge.id}", amount=pledge.amount_minor, currency="usd",
                  payment_intent=f"pi_test_{pledge.id}", amount_refunded=sum(a for _, a in refunds),
                  refunded=sum(a for _, a in refunds) == pledge.amount_minor)
    charge["refunds"] = {"object": "list", "has_more": False, "url": "/v1/refunds",
                         "data": [{"id": rid, "object": "refund", "amount": amount, "currency": "usd",
                                   "status": "succeeded", "created": n} for n, (rid, amount) in enumerate(refunds)]}
    return charge


def test_refunds_from_stripe_count_each_refund_once_whatever_the_order(client, session):
    pledge = a_pledge(session, 10000)
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_paid")
    post_event(client, "charge.refunded", _charge(pledge, [("re_1", 3000)]), "evt_r1")
    # 20.00 more from the dashboard: amount_refunded is now 5000, both refunds listed.
    post_event(client, "charge.refunded", _charge(pledge, [("re_1", 3000), ("re_2", 2000)]), "evt_r2")
    # The first event again, under its own id and as a new delivery of the same content.
    post_event(client, "charge.refunded", _charge(pledge, [("re_1", 3000)]), "evt_r1")
    post_event(client, "charge.refunded", _charge(pledge, [("re_1", 3000)]), "evt_r1_again")
    pledge = session.get(Pledge, pledge.id)
    assert (pledge.refunded_minor, pledge.state) == (5000, PledgeState.partially_refunded)
    assert escrow(pledge) == 5000
    assert ledger.balance(ledger.account(AccountKind.refunds), "USD") == 5000
    assert check() == []


def test_bad_signature_is_401_and_stores_nothing(client, session):
    pledge = a_pledge(session, 5000)
    response = post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_bad",
                          secret="whsec_wrong")
    assert response.status_code == 401
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert session.get(Pledge, pledge.id).state is PledgeState.pending


def test_delivery_statuses_are_recorded(client, session):
    pledge = a_pledge(session, 5000)
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_ok")
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "evt_ok"))
    assert (delivery.source, delivery.event, delivery.status) == ("stripe", "checkout.session.completed",
                                                                 DeliveryStatus.processed)


def _dispute(pledge: Pledge, status: str, dispute_id: str = "dp_1") -> dict:
    return {"id": dispute_id, "object": "dispute", "amount": pledge.amount_minor, "currency": "usd",
            "payment_intent": f"pi_test_{pledge.id}", "charge": f"ch_test_{pledge.id}", "status": status}


def test_a_dispute_holds_the_pledge_apart_and_a_won_dispute_returns_it(client, session):
    pledge = a_pledge(session, 5000)
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_d_paid")
    post_event(client, "charge.dispute.created", _dispute(pledge, "needs_response"), "evt_d_open")
    assert session.get(Pledge, pledge.id).state is PledgeState.disputed
    assert escrow(pledge) == 5000  # still in escrow, but not payable
    post_event(client, "charge.dispute.closed", _dispute(pledge, "won"), "evt_d_won")
    assert session.get(Pledge, pledge.id).state is PledgeState.held
    assert check() == []


def test_a_lost_dispute_is_a_loss_of_exactly_its_amount_once(client, session):
    pledge = a_pledge(session, 5000)
    post_event(client, "checkout.session.completed", session_object(pledge, "paid"), "evt_l_paid")
    post_event(client, "charge.dispute.created", _dispute(pledge, "needs_response"), "evt_l_open")
    post_event(client, "charge.dispute.closed", _dispute(pledge, "lost"), "evt_l_lost")
    post_event(client, "charge.dispute.closed", _dispute(pledge, "lost"), "evt_l_lost_again")
    pledge = session.get(Pledge, pledge.id)
    assert (pledge.state, pledge.refunded_minor) == (PledgeState.refunded, 5000)
    assert escrow(pledge) == 0
    assert ledger.balance(ledger.account(AccountKind.disputes), "USD") == 5000
    assert ledger.balance(ledger.account(AccountKind.refunds), "USD") == 0
    assert check() == []
