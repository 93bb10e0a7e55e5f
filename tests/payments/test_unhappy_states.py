"""Every state Stripe reports, in both directions: a refund that fails after
it was made, a Checkout left to expire, pledges never paid, and what the
public sees of unpaid pledges."""
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import ItemFunding
from marketplace.ledger.check import check
from marketplace.ledger.models import LedgerTransaction
from marketplace.pledges.models import Pledge, PledgeState, RefundFailure
from tests.accounts.helpers import as_user, csrf, signup
from tests.payments.test_checkout import pledge_through_the_page
from tests.payments.test_event_order import _admin, a_paid_card_pledge, an_item, escrow, stripe_server  # noqa: F401
from tests.payments.test_stripe_events import post_event


def _held_then_refunded_by_the_funder(client, session, stripe_server) -> tuple[Pledge, str]:
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    post_event(client, "checkout.session.completed", paid, "evt_paid")
    assert escrow(pledge) == 5000
    token = csrf(client, f"/pledges/{pledge.id}")
    assert client.post(f"/pledges/{pledge.id}/refund", data={"csrf_token": token}).status_code == 303
    session.refresh(pledge)
    assert (pledge.state, escrow(pledge)) == (PledgeState.refunded, 0)
    (refund_id,) = [r["id"] for r in stripe_server.refunds.values()]
    assert refund_id.startswith("re_")
    return pledge, refund_id


def _wait_for(received: list, subject: str) -> list:
    for _ in range(100):
        found = [m for m in received if m["Subject"] == subject]
        if found:
            return found
        time.sleep(0.05)
    return []


@pytest.mark.parametrize("event_type", ["refund.failed", "charge.refund.updated"])
def test_a_refund_that_fails_is_held_again_once_flagged_and_told(app, client, session, stripe_server, smtp_server,
                                                                  event_type):
    pledge, refund_id = _held_then_refunded_by_the_funder(client, session, stripe_server)
    failed = stripe_server.fail_refund(refund_id)  # the card was closed
    assert (failed["status"], failed["metadata"]) == ("failed", {"pledge_id": str(pledge.id)})
    assert post_event(client, event_type, failed, "evt_failed").status_code == 202
    session.refresh(pledge)
    assert (pledge.state, pledge.refunded_minor, escrow(pledge)) == (PledgeState.held, 0, 5000)
    assert session.get(ItemFunding, (pledge.item_id, "USD")).held_minor == 5000
    assert check() == []
    # The same event again, and under another event id: nothing more.
    post_event(client, event_type, failed, "evt_failed")
    post_event(client, event_type, failed, "evt_failed_again")
    # An older charge.refunded that still lists the refund as succeeded does not refund it again.
    stale = stripe_server.charge_of(pledge.payment_intent_id)
    stale["refunds"]["data"][0]["status"] = "succeeded"
    post_event(client, "charge.refunded", stale, "evt_stale")
    session.refresh(pledge)
    assert (pledge.state, pledge.refunded_minor, escrow(pledge)) == (PledgeState.held, 0, 5000)
    assert session.scalar(select(func.count()).where(LedgerTransaction.kind == "refund_failed")) == 1
    failure = session.scalars(select(RefundFailure)).one()
    assert (failure.refund_id, failure.amount_minor, failure.reason) == (refund_id, 5000, "expired_or_canceled_card")
    # The admin sees the flag; the funder is told, and cannot retry the same dead card by themselves.
    admin = as_user(app, _admin(session))
    page = admin.get("/admin/pledges").get_data(as_text=True)
    assert f"Refund {refund_id} failed (expired_or_canceled_card): $50.00 held again." in page
    assert "1 refund failed" in admin.get("/admin/").get_data(as_text=True)
    mail = _wait_for(smtp_server, "Your refund could not be delivered")
    assert len(mail) == 1 and mail[0]["To"] == "funder@example.org"
    assert "The money came back to the commons: it is held in escrow" in mail[0].get_content()
    assert "$50.00" in mail[0].get_content()
    assert "could not reach your card" in client.get(f"/pledges/{pledge.id}").get_data(as_text=True)


def test_a_refund_failure_known_before_the_refund_keeps_it_from_ever_applying(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    post_event(client, "checkout.session.completed", paid, "evt_paid")
    refund = stripe_server.create_refund({"payment_intent": paid["payment_intent"], "amount": "2000"}, "dash")
    refunded = stripe_server.charge_of(paid["payment_intent"])  # the charge.refunded of that moment
    post_event(client, "refund.failed", stripe_server.fail_refund(refund["id"]), "evt_failed_first")
    post_event(client, "charge.refunded", refunded, "evt_refund_late")
    session.refresh(pledge)
    assert (pledge.state, pledge.refunded_minor, escrow(pledge)) == (PledgeState.held, 0, 5000)
    assert session.scalars(select(RefundFailure)).one().amount_minor == 0
    assert check() == []


def test_the_expiry_cron_leaves_a_pledge_whose_refund_failed_to_the_fiscal_host(client, session, stripe_server):
    from marketplace.pledges.service import refund_expired
    from marketplace.timeutil import utcnow

    pledge, refund_id = _held_then_refunded_by_the_funder(client, session, stripe_server)
    post_event(client, "refund.failed", stripe_server.fail_refund(refund_id), "evt_failed")
    session.get(Pledge, pledge.id).expires_at = utcnow() - timedelta(days=1)
    session.commit()
    assert refund_expired() == []
    assert len(stripe_server.refunds) == 1  # no second refund to the closed card
    assert session.scalar(select(func.count()).where(AuditEvent.action == "pledge.refund_due")) == 1


def test_an_admin_refund_after_a_failed_one_is_a_new_stripe_refund_and_lowers_the_flag(app, client, session,
                                                                                        stripe_server):
    from marketplace.pledges import service as pledges

    pledge, refund_id = _held_then_refunded_by_the_funder(client, session, stripe_server)
    post_event(client, "refund.failed", stripe_server.fail_refund(refund_id), "evt_failed")
    assert pledges.refund_through_rail(pledge.id, 5000, reason="funder's new card", actor="admin")
    session.commit()
    keys = [r[3]["Idempotency-Key"] for r in stripe_server.requests if r[1] == "/v1/refunds"]
    assert keys == [f"pledge-{pledge.id}-refund-after-0", f"pledge-{pledge.id}-refund-after-0-retry-1"]
    session.refresh(pledge)
    assert (pledge.state, escrow(pledge)) == (PledgeState.refunded, 0)
    assert pledges.unresolved_refund_failures(pledge.id) == []
    assert check() == []


def test_an_expired_checkout_cancels_the_pending_pledge(client, session, stripe_server):
    signup(client, "funder@example.org")
    item = an_item(session)
    pledge_through_the_page(client, item, "50.00")
    pledge = session.scalars(select(Pledge)).one()
    assert session.get(ItemFunding, (item.id, "USD")).pending_minor == 5000
    expired = stripe_server.expire(pledge.checkout_session_id)
    assert post_event(client, "checkout.session.expired", expired, "evt_expired").status_code == 202
    post_event(client, "checkout.session.expired", expired, "evt_expired_again")
    session.refresh(pledge)
    assert pledge.state is PledgeState.cancelled
    assert session.get(ItemFunding, (item.id, "USD")).pending_minor == 0
    assert client.get(f"/api/v1/items/{item.id}").get_json()["pledges_awaiting_payment"] == 0
    assert check() == []


def _age(session, pledge: Pledge, delta: timedelta) -> None:
    session.get(Pledge, pledge.id).created_at -= delta
    session.commit()


def test_unpaid_pledges_expire_after_24_hours_by_card_and_30_days_by_transfer(app, client, session, stripe_server):
    from jobs.money import cancel_unpaid_pledges

    signup(client, "funder@example.org")
    item = an_item(session)
    for amount, rail in [("10.00", "card"), ("20.00", "card"), ("30.00", "bank_transfer"),
                         ("40.00", "bank_transfer"), ("50.00", "card")]:
        pledge_through_the_page(client, item, amount, rail=rail)
    card_old, card_new, transfer_old, transfer_new, card_paid = session.scalars(select(Pledge).order_by(Pledge.id))
    _age(session, card_old, timedelta(hours=24, minutes=1))
    _age(session, card_new, timedelta(hours=23))
    _age(session, transfer_old, timedelta(days=30, minutes=1))
    _age(session, transfer_new, timedelta(days=29))
    _age(session, card_paid, timedelta(hours=25))
    stripe_server.pay(card_paid.checkout_session_id)  # paid at the last minute; its event is on its way
    assert cancel_unpaid_pledges() == [card_old.id, transfer_old.id]
    states = {p.id: p.state for p in session.scalars(select(Pledge))}
    assert states == {card_old.id: PledgeState.cancelled, card_new.id: PledgeState.pending,
                      transfer_old.id: PledgeState.cancelled, transfer_new.id: PledgeState.pending,
                      card_paid.id: PledgeState.pending}
    # The abandoned Checkout was closed at Stripe first, so nobody can pay it any more.
    assert stripe_server.sessions[card_old.checkout_session_id]["status"] == "expired"
    assert session.get(ItemFunding, (item.id, "USD")).pending_minor == 2000 + 4000 + 5000
    # The times are configuration.
    app.config["PLEDGE_UNPAID_CARD_HOURS"] = 12
    try:
        assert cancel_unpaid_pledges() == [card_new.id]
    finally:
        app.config["PLEDGE_UNPAID_CARD_HOURS"] = 24
    assert check() == []


def test_a_funder_cancels_their_own_unpaid_pledge(app, client, session, stripe_server):
    signup(client, "funder@example.org")
    item = an_item(session)
    pledge_through_the_page(client, item, "50.00")
    pledge = session.scalars(select(Pledge)).one()
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "Cancel this unpaid pledge" in page
    token = csrf(client, f"/pledges/{pledge.id}")
    # No CSRF token: refused, nothing changes.
    assert client.post(f"/pledges/{pledge.id}/cancel").status_code == 400
    # Someone else's pledge: not found.
    other = app.test_client()
    signup(other, "other@example.org")
    assert other.post(f"/pledges/{pledge.id}/cancel", data={"csrf_token": csrf(other, "/")}).status_code == 404
    session.refresh(pledge)
    assert pledge.state is PledgeState.pending
    response = client.post(f"/pledges/{pledge.id}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    session.refresh(pledge)
    assert pledge.state is PledgeState.cancelled
    assert stripe_server.sessions[pledge.checkout_session_id]["status"] == "expired"
    assert session.get(ItemFunding, (item.id, "USD")).pending_minor == 0
    assert "Your pledge is cancelled; nothing was taken." in client.get(f"/pledges/{pledge.id}").get_data(as_text=True)


def test_a_funder_cannot_cancel_a_pledge_they_have_paid(client, session, stripe_server):
    pledge, paid = a_paid_card_pledge(client, session, stripe_server)
    token = csrf(client, f"/pledges/{pledge.id}")
    response = client.post(f"/pledges/{pledge.id}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    session.refresh(pledge)
    assert pledge.state is PledgeState.pending  # the payment's event will hold it
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "This pledge was paid already; the payment is being confirmed." in page
    post_event(client, "checkout.session.completed", paid, "evt_paid")
    session.refresh(pledge)
    assert pledge.state is PledgeState.held
    assert "Cancel this unpaid pledge" not in client.get(f"/pledges/{pledge.id}").get_data(as_text=True)


def test_starting_a_checkout_never_makes_an_item_look_funded(app, client, session, stripe_server):
    signup(client, "funder@example.org")
    item = an_item(session)
    pledge_through_the_page(client, item, "9,000.00")
    pledge_through_the_page(client, item, "1,234.56", rail="bank_transfer")
    visitor = app.test_client()
    page = visitor.get(f"/items/{item.id}").get_data(as_text=True)
    assert "$9,000.00" not in page and "$1,234.56" not in page
    assert re.search(r"2 pledges, not counted until their money arrives", page)
    assert "No money pledged yet" in page
    api = visitor.get(f"/api/v1/items/{item.id}").get_json()
    assert (api["bounty"], api["pledges_awaiting_payment"]) == ([], 2)
    assert "pending" not in api
    ledger_api = visitor.get(f"/api/v1/items/{item.id}/ledger").get_json()
    assert (ledger_api["pledges"], ledger_api["escrow"], ledger_api["pledges_awaiting_payment"]) == ([], [], 2)
    funded = visitor.get("/api/v1/items?funded=funded").get_json()
    assert item.id not in [i["id"] for i in funded["items"]]
