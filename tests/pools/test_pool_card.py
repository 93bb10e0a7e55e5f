"""A pool's budget paid by card through Stripe Checkout (the pledges' machinery,
through the real stripe library and the local Stripe stand-in), its events
replayed and reordered, and what it holds going back by the rail it came by:
a Stripe refund (partial, retried, failing), or the fiscal host's transfer."""
from datetime import timedelta
from itertools import permutations

import pytest
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.pools import rails
from marketplace.pools import service as pools
from marketplace.pools.models import MatchingPool, PoolRefund, PoolRefundState, PoolState
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.accounts.helpers import as_user, csrf
from tests.payments.test_stripe_events import post_event
from tests.pools.helpers import escrow, held, person


def a_card_pool(pw, budget: int = 50000, **options) -> MatchingPool:
    """A pool whose sponsor opened its Checkout (not paid yet)."""
    now = utcnow()
    pool = pools.create_pool(pw.sponsor, name=options.pop("name", "Card match"), currency="USD",
                             budget_minor=budget, starts_at=options.pop("starts_at", now - timedelta(hours=1)),
                             ends_at=options.pop("ends_at", now + timedelta(days=30)), **options)
    rails.start_checkout(pool.id, success_url="http://localhost/paid?session_id={CHECKOUT_SESSION_ID}",
                         cancel_url="http://localhost/pools")
    db.session.commit()
    return pool


def funded_by_card(pw, client, stripe_api, budget: int = 50000, **options) -> tuple[MatchingPool, dict]:
    pool = a_card_pool(pw, budget, **options)
    paid = stripe_api.pay(pool.checkout_session_id)
    assert post_event(client, "checkout.session.completed", paid, f"evt_pool_{pool.id}_paid").status_code == 202
    db.session.refresh(pool)
    assert pool.state is PoolState.funded
    return pool, paid


def delivery(event_id: str) -> WebhookDelivery:
    return db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == event_id))


def end(pool: MatchingPool) -> None:
    assert pools.end_due(now=pool.ends_at + timedelta(seconds=1)) == [pool.id]


def ledger_check_passes(runner) -> None:
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 0, result.output
    assert check() == []


# --- in ------------------------------------------------------------------------------

def test_the_pool_id_travels_on_the_session_the_payment_intent_and_the_charge(pw, client, stripe_api):
    pool = a_card_pool(pw)
    _, path, form, headers = stripe_api.requests[0]
    assert path == "/v1/checkout/sessions"
    assert headers["Idempotency-Key"] == f"pool-{pool.id}-checkout-0"
    assert (form["client_reference_id"], form["metadata[pool_id]"], form["payment_intent_data[metadata][pool_id]"],
            form["line_items[0][price_data][unit_amount]"]) == (f"pool-{pool.id}", str(pool.id), str(pool.id), "50000")
    paid = stripe_api.pay(pool.checkout_session_id)
    assert stripe_api.charge_of(paid["payment_intent"])["metadata"] == {"pool_id": str(pool.id)}
    # Asked again (a double click), Stripe gives the same session.
    rails.start_checkout(pool.id, success_url="http://localhost/a", cancel_url="http://localhost/b")
    assert len(stripe_api.sessions) == 1


def test_a_paid_checkout_funds_the_pool_once_however_often_it_is_told(pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api)
    assert (pool.received_minor, pool.rail, pool.payment_intent_id) == (50000, "card", paid["payment_intent"])
    assert held(pool) == 50000
    # The same delivery again, and the same event under another id (Stripe resends it).
    post_event(client, "checkout.session.completed", paid, f"evt_pool_{pool.id}_paid")
    post_event(client, "checkout.session.completed", paid, "evt_pool_paid_again")
    assert delivery("evt_pool_paid_again").status is DeliveryStatus.processed
    assert "funded already" in delivery("evt_pool_paid_again").outcome
    assert held(pool) == 50000 and db.session.get(MatchingPool, pool.id).received_minor == 50000
    ledger_check_passes(runner)


def test_the_success_page_funds_the_pool_before_the_webhook_and_the_webhook_then_changes_nothing(
        app, pw, client, stripe_api):
    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    sponsor = as_user(app, pw.sponsor)
    response = sponsor.get(f"/pools/{pool.id}/paid?session_id={paid['id']}")
    assert response.status_code == 303
    assert db.session.get(MatchingPool, pool.id).state is PoolState.funded and held(pool) == 50000
    post_event(client, "checkout.session.completed", paid, "evt_after_page")
    assert delivery("evt_after_page").status is DeliveryStatus.processed and held(pool) == 50000


def test_the_sponsor_creates_a_pool_paid_by_card_through_the_page(app, pw, stripe_api):
    sponsor = as_user(app, pw.sponsor)
    response = sponsor.post("/pools/new", data={
        "csrf_token": csrf(sponsor, "/pools/new"), "name": "Card page pool", "kind": "ratio", "currency": "USD",
        "budget": "250.00", "rail": "card", "ratio_percent": "100", "starts_on": utcnow().date().isoformat(),
        "ends_on": (utcnow() + timedelta(days=9)).date().isoformat()})
    assert response.status_code == 303
    session_obj = next(iter(stripe_api.sessions.values()))
    assert response.headers["Location"] == session_obj["url"]
    pool = db.session.scalar(select(MatchingPool).where(MatchingPool.name == "Card page pool"))
    assert (pool.checkout_session_id, session_obj["amount_total"]) == (session_obj["id"], 25000)


def test_an_expired_checkout_lets_the_sponsor_pay_again_and_a_late_expiry_changes_nothing(pw, client, stripe_api):
    pool = a_card_pool(pw)
    first = stripe_api.expire(pool.checkout_session_id)
    post_event(client, "checkout.session.expired", first, "evt_expired_1")
    db.session.refresh(pool)
    assert (pool.state, pool.checkout_session_id, pool.checkout_attempt) == (PoolState.awaiting_budget, None, 1)
    rails.start_checkout(pool.id, success_url="http://localhost/a", cancel_url="http://localhost/b")
    db.session.commit()
    assert pool.checkout_session_id != first["id"]
    assert stripe_api.requests[-1][3]["Idempotency-Key"] == f"pool-{pool.id}-checkout-1"
    paid = stripe_api.pay(pool.checkout_session_id)
    post_event(client, "checkout.session.completed", paid, "evt_paid_2")
    post_event(client, "checkout.session.expired", first, "evt_expired_1_again")  # late, replayed
    db.session.refresh(pool)
    assert (pool.state, pool.checkout_session_id, pool.checkout_attempt) == (PoolState.funded, paid["id"], 1)
    assert held(pool) == 50000


EVENTS = ("completed", "charge.refunded", "refund.updated")


@pytest.mark.parametrize("order", list(permutations(EVENTS)), ids="/".join)
def test_pool_payment_events_in_any_order_end_in_the_same_state(pw, client, stripe_api, order, runner):
    """Stripe's dashboard refunded 100.00 of the pool's payment before any event reached us."""
    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    refund = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "10000"}, "dash-1")
    objects = {"completed": ("checkout.session.completed", paid),
               "charge.refunded": ("charge.refunded", stripe_api.charge_of(paid["payment_intent"])),
               "refund.updated": ("refund.updated", refund)}
    for n, name in enumerate(order * 2):  # each twice: replays change nothing
        event_type, obj = objects[name]
        assert post_event(client, event_type, obj, f"evt_{name}_{n}").status_code == 202
    pool = db.session.get(MatchingPool, pool.id)
    db.session.refresh(pool)
    assert (pool.state, pool.received_minor, pool.returned_minor, held(pool)) == (PoolState.funded, 50000, 10000,
                                                                                 40000)
    statuses = {d.status for d in db.session.scalars(select(WebhookDelivery))}
    assert statuses == {DeliveryStatus.processed}
    ledger_check_passes(runner)


def test_a_dispute_before_anything_else_is_matched_through_stripe_and_a_lost_one_is_booked_once(
        pw, client, stripe_api, runner):
    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    dispute = stripe_api.dispute(paid["payment_intent"], "lost", amount=20000)
    for n in range(2):
        assert post_event(client, "charge.dispute.closed", dispute, f"evt_dispute_{n}").status_code == 202
    post_event(client, "checkout.session.completed", paid, "evt_paid_late")
    pool = db.session.get(MatchingPool, pool.id)
    db.session.refresh(pool)
    assert (pool.state, pool.returned_minor, held(pool)) == (PoolState.funded, 20000, 30000)
    ledger_check_passes(runner)


def test_the_fiscal_host_confirming_a_transfer_closes_the_open_card_checkout(pw, client, stripe_api):
    pool = a_card_pool(pw)
    assert pools.confirm_budget(pool.id, Money(50000, "USD"), reference="BANK", received_on=utcnow().date(),
                                actor=pw.admin)
    session_obj = stripe_api.sessions[pool.checkout_session_id]
    assert session_obj["status"] == "expired"  # nobody can pay the budget a second time
    post_event(client, "checkout.session.expired", session_obj, "evt_closed_by_host")
    pool = db.session.get(MatchingPool, pool.id)
    assert (pool.state, pool.rail, held(pool)) == (PoolState.funded, "bank_transfer", 50000)


def test_a_transfer_confirmed_after_the_card_paid_is_refused_and_the_card_funds_the_pool(pw, client, stripe_api):
    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    with pytest.raises(pools.PoolError, match="paid this pool's budget by card"):
        pools.confirm_budget(pool.id, Money(50000, "USD"), reference="BANK", received_on=utcnow().date(),
                             actor=pw.admin)
    assert held(pool) == 0
    post_event(client, "checkout.session.completed", paid, "evt_card_first")
    pool = db.session.get(MatchingPool, pool.id)
    db.session.refresh(pool)
    assert (pool.state, pool.rail, held(pool)) == (PoolState.funded, "card", 50000)


def test_a_card_payment_for_a_pool_cancelled_meanwhile_is_failed_for_a_person(pw, client, stripe_api):
    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    pool.checkout_session_id = None  # an older Checkout the commons no longer tracks
    db.session.commit()
    assert rails.cancel_pool(pool.id, actor=pw.sponsor)
    paid = {**paid, "metadata": {"pool_id": str(pool.id)}}
    post_event(client, "checkout.session.completed", paid, "evt_paid_cancelled")
    assert delivery("evt_paid_cancelled").status is DeliveryStatus.failed
    assert "refund it in Stripe" in delivery("evt_paid_cancelled").outcome
    assert held(pool) == 0


# --- out -----------------------------------------------------------------------------

def test_an_ended_card_pool_is_refunded_what_it_holds_and_later_returns_are_refunded_in_part(
        pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api, sdgs=[3], cap_per_pledge_minor=10000)
    x = pw.item(3)
    pledge = pw.pledge(person("a@example.org"), x, 8000)
    assert held(pool) == 42000 and escrow(x) == 16000
    end(pool)
    assert rails.return_due() == {"refunded": [pool.id], "waiting": []}
    row = db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool.id)).one()
    refund = stripe_api.refunds[row.idempotency_key]
    assert (row.state, row.amount_minor, refund["amount"], refund["payment_intent"]) == (
        PoolRefundState.succeeded, 42000, 42000, paid["payment_intent"])
    assert refund["metadata"] == {"pool_id": str(pool.id), "pool_refund_id": str(row.id)}
    assert (held(pool), db.session.get(MatchingPool, pool.id).returned_minor) == (0, 42000)
    assert rails.return_due() == {"refunded": [], "waiting": []}  # nothing more: no second refund
    # After the end, the matched pledge is refunded: its match comes back to the pool, and goes on to the sponsor.
    from marketplace.pledges import service as pledges
    pledges.self_service_refund(pledge.id, actor="test")
    assert held(pool) == 8000 and escrow(x) == 0
    assert rails.return_due() == {"refunded": [pool.id], "waiting": []}
    amounts = sorted(r.amount_minor for r in db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool.id)))
    assert amounts == [8000, 42000]
    assert stripe_api.charge_of(paid["payment_intent"])["amount_refunded"] == 50000
    assert (held(pool), db.session.get(MatchingPool, pool.id).returned_minor) == (0, 50000)
    # Stripe's charge.refunded for our own refunds books nothing more.
    post_event(client, "charge.refunded", stripe_api.charge_of(paid["payment_intent"]), "evt_our_refunds")
    assert db.session.get(MatchingPool, pool.id).returned_minor == 50000
    ledger_check_passes(runner)


def test_a_refund_stripe_cannot_be_asked_for_stays_requested_and_is_retried_with_the_same_key(
        app, pw, client, stripe_api, runner):
    pool, _ = funded_by_card(pw, client, stripe_api)
    end(pool)
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # nothing answers there
    app.config["STRIPE_TIMEOUT_SECONDS"] = 1
    try:
        assert rails.return_due() == {"refunded": [], "waiting": [pool.id]}
    finally:
        app.config["STRIPE_API_BASE"] = stripe_api.url
        app.config["STRIPE_TIMEOUT_SECONDS"] = None
    row = db.session.scalars(select(PoolRefund)).one()
    assert (row.state, row.attempts, held(pool)) == (PoolRefundState.requested, 1, 50000)
    assert row.last_error
    admin = as_user(app, pw.admin)
    assert "is waiting for Stripe (tried 1 times" in admin.get(f"/pools/{pool.id}").get_data(as_text=True)
    with pytest.raises(pools.PoolError):  # no manual return while the card refund may still go through
        pools.record_return(pool.id, reference="BANK", actor=pw.admin)
    assert rails.return_due() == {"refunded": [pool.id], "waiting": []}
    db.session.refresh(row)
    assert (row.state, row.attempts, held(pool)) == (PoolRefundState.succeeded, 2, 0)
    assert list(stripe_api.refunds) == [row.idempotency_key]
    ledger_check_passes(runner)


def test_a_refund_that_fails_puts_the_money_back_owed_flagged_for_admins_and_an_admin_retries(
        app, pw, client, stripe_api, runner):
    pool, _ = funded_by_card(pw, client, stripe_api)
    end(pool)
    rails.return_due()
    row = db.session.scalars(select(PoolRefund)).one()
    failed = stripe_api.fail_refund(row.refund_id)
    for n in range(2):  # replayed: once
        assert post_event(client, "refund.failed", failed, f"evt_refund_failed_{n}").status_code == 202
    db.session.refresh(row)
    pool = db.session.get(MatchingPool, pool.id)
    db.session.refresh(pool)
    assert (row.state, held(pool), pool.returned_minor) == (PoolRefundState.failed, 50000, 0)
    assert rails.owed_to_sponsor(pool) == 50000
    ledger_check_passes(runner)
    assert rails.return_due() == {"refunded": [], "waiting": []}  # not the same card again by itself
    admin = as_user(app, pw.admin)
    html = admin.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "failed: expired_or_canceled_card" in html and "Owed to the sponsor: $500.00" in html
    assert "failed: expired_or_canceled_card" not in client.get(f"/pools/{pool.id}").get_data(as_text=True)
    listed = admin.get("/pools").get_data(as_text=True)
    assert "owed to the sponsor: $500.00 · <strong>card refund failed</strong>" in listed
    assert "card refund failed" not in client.get("/pools").get_data(as_text=True)
    response = admin.post(f"/pools/{pool.id}/refund", data={"csrf_token": csrf(admin, f"/pools/{pool.id}")})
    assert response.status_code == 303
    rows = list(db.session.scalars(select(PoolRefund).order_by(PoolRefund.id)))
    assert [r.state for r in rows] == [PoolRefundState.failed, PoolRefundState.succeeded]
    assert held(pool) == 0 and db.session.get(MatchingPool, pool.id).returned_minor == 50000
    ledger_check_passes(runner)


def test_a_failed_card_refund_can_be_sent_back_by_transfer_instead(pw, client, stripe_api, runner):
    pool, _ = funded_by_card(pw, client, stripe_api)
    end(pool)
    rails.return_due()
    row = db.session.scalars(select(PoolRefund)).one()
    post_event(client, "refund.failed", stripe_api.fail_refund(row.refund_id), "evt_failed")
    assert pools.record_return(pool.id, reference="WIRE-BACK", actor=pw.admin) == 50000
    assert held(pool) == 0 and rails.return_due() == {"refunded": [], "waiting": []}
    ledger_check_passes(runner)


# --- cancelling ----------------------------------------------------------------------

def test_the_sponsor_cancels_an_unfunded_card_pool_and_its_checkout_is_expired(app, pw, client, stripe_api):
    pool = a_card_pool(pw)
    sponsor = as_user(app, pw.sponsor)
    response = sponsor.post(f"/pools/{pool.id}/cancel", data={"csrf_token": csrf(sponsor, f"/pools/{pool.id}")})
    assert response.status_code == 303
    assert db.session.get(MatchingPool, pool.id).state is PoolState.cancelled
    assert stripe_api.sessions[pool.checkout_session_id]["status"] == "expired"
    with pytest.raises(pools.PoolError):
        pools.confirm_budget(pool.id, Money(50000, "USD"), reference="LATE", received_on=utcnow().date(),
                             actor=pw.admin)


def test_a_stranger_cannot_cancel_a_pool(app, pw, client, stripe_api):
    pool, _ = funded_by_card(pw, client, stripe_api)
    stranger = as_user(app, person("stranger@example.org"))
    response = stranger.post(f"/pools/{pool.id}/cancel", data={"csrf_token": csrf(stranger, f"/pools/{pool.id}")})
    assert response.status_code == 403
    assert db.session.get(MatchingPool, pool.id).state is PoolState.funded


def test_cancelling_a_card_pool_paid_meanwhile_is_refused(pw, client, stripe_api):
    pool = a_card_pool(pw)
    stripe_api.pay(pool.checkout_session_id)
    with pytest.raises(pools.PoolError, match="paid already"):
        rails.cancel_pool(pool.id, actor=pw.sponsor)
    assert db.session.get(MatchingPool, pool.id).state is PoolState.awaiting_budget


def test_a_funded_card_pool_cancelled_before_any_match_refunds_its_budget_and_matches_nothing(
        app, pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api, sdgs=[3])
    sponsor = as_user(app, pw.sponsor)
    sponsor.post(f"/pools/{pool.id}/cancel", data={"csrf_token": csrf(sponsor, f"/pools/{pool.id}")})
    pool = db.session.get(MatchingPool, pool.id)
    db.session.refresh(pool)
    assert (pool.state, pool.returned_minor, held(pool)) == (PoolState.cancelled, 50000, 0)
    assert stripe_api.charge_of(paid["payment_intent"])["amount_refunded"] == 50000
    x = pw.item(3)
    pw.pledge(person("late@example.org"), x, 5000)
    assert escrow(x) == 5000  # no match from a cancelled pool
    ledger_check_passes(runner)


def test_a_pool_that_matched_a_pledge_cannot_be_cancelled(pw, client, stripe_api):
    pool, _ = funded_by_card(pw, client, stripe_api, sdgs=[3])
    pw.pledge(person("a@example.org"), pw.item(3), 1000)
    with pytest.raises(pools.PoolError, match="matched pledges already"):
        rails.cancel_pool(pool.id, actor=pw.sponsor)
    assert db.session.get(MatchingPool, pool.id).state is PoolState.funded


def test_a_transfer_funded_pool_cancelled_is_owed_until_the_fiscal_host_records_the_transfer_back(
        app, pw, runner):
    pool = pw.pool(30000)
    assert rails.cancel_pool(pool.id, actor=pw.sponsor)
    assert rails.return_due() == {"refunded": [], "waiting": []}  # never by card
    assert rails.owed_to_sponsor(pool) == 30000
    admin = as_user(app, pw.admin)
    assert "Record the transfer back" in admin.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert pools.record_return(pool.id, reference="BACK-1", actor=pw.admin) == 30000
    assert held(pool) == 0 and rails.owed_to_sponsor(pool) == 0
    ledger_check_passes(runner)


def test_the_api_says_how_the_budget_came_and_keeps_a_cancelled_funded_pool_public(pw, client, stripe_api):
    pool, _ = funded_by_card(pw, client, stripe_api)
    assert client.get(f"/api/v1/pools/{pool.id}").get_json()["rail"] == "card"
    assert rails.cancel_pool(pool.id, actor=pw.sponsor)
    rails.return_due()
    detail = client.get(f"/api/v1/pools/{pool.id}").get_json()
    assert (detail["state"], detail["figures"]["returned"], detail["figures"]["remaining"]) == ("cancelled", 50000, 0)
    assert "Returned to the sponsor</dt><dd>$500.00" in client.get(f"/pools/{pool.id}").get_data(as_text=True)
    unfunded = a_card_pool(pw, name="Never paid")
    assert rails.cancel_pool(unfunded.id, actor=pw.sponsor)
    assert client.get(f"/api/v1/pools/{unfunded.id}").status_code == 404
    assert client.get(f"/pools/{unfunded.id}").status_code == 404


def test_a_refund_made_at_stripe_whose_answer_was_lost_is_found_not_made_twice(pw, client, stripe_api, runner):
    """The worker died after Stripe made the refund, and the key's 24 hours at Stripe passed."""
    pool, paid = funded_by_card(pw, client, stripe_api)
    end(pool)
    row_id = rails.begin_card_return(pool.id)
    row = db.session.get(PoolRefund, row_id)
    stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "50000",
                              "metadata[pool_id]": str(pool.id), "metadata[pool_refund_id]": str(row_id)},
                             row.idempotency_key)
    stripe_api.forget_idempotency_keys()
    assert rails.send_card_return(row_id)
    assert stripe_api.charge_of(paid["payment_intent"])["amount_refunded"] == 50000  # one refund, not two
    assert held(pool) == 0 and db.session.get(MatchingPool, pool.id).returned_minor == 50000
    ledger_check_passes(runner)
