"""Attacks on a card-funded pool's money paths (issue 16): Stripe's events
for the pool arriving late, replayed, stale or in another order than the
refunds we made, a worker killed between the refund row and Stripe. After
each, ``flask ledger check`` passes and money in = matched + returned + held."""
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.pools import rails
from marketplace.pools.models import MatchingPool, PoolRefund, PoolRefundState, PoolState
from marketplace.webhooks.models import DeliveryStatus
from tests.payments.test_stripe_events import post_event
from tests.pools.helpers import escrow, held, person
from tests.pools.test_pool_card import delivery, end, funded_by_card, ledger_check_passes


def figures(pool: MatchingPool) -> tuple[int, int, int]:
    pool = db.session.get(MatchingPool, pool.id)
    db.session.refresh(pool)
    return pool.received_minor, pool.returned_minor, held(pool)


def test_a_dashboard_refund_booked_while_our_refund_row_waits_never_drives_the_pool_negative(
        pw, client, stripe_api, runner):
    """The worker committed the refund row of all the pool holds (420.00) and was
    killed before Stripe was asked; meanwhile someone refunded 50.00 in Stripe's
    dashboard and its event came. Booking both would return 470.00 of 420.00
    (before the fix: the pool held -50.00). Our unsent row gives way: the job
    refunds the 370.00 left under a new row and key."""
    pool, paid = funded_by_card(pw, client, stripe_api, sdgs=[3], cap_per_pledge_minor=10000)
    x = pw.item(3)
    pw.pledge(person("a@example.org"), x, 8000)
    end(pool)
    first = rails.begin_card_return(pool.id)
    db.session.commit()  # step one committed; the worker dies here
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dash-x")
    assert post_event(client, "refund.updated", dashboard, "evt_dash_x").status_code == 202
    assert delivery("evt_dash_x").status is DeliveryStatus.processed
    assert db.session.get(PoolRefund, first) is None  # never sent to Stripe: withdrawn
    assert figures(pool) == (50000, 5000, 37000)
    assert rails.return_due() == {"refunded": [pool.id], "waiting": []}
    rows = list(db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool.id)))
    assert [(r.state, r.amount_minor) for r in rows] == [(PoolRefundState.succeeded, 37000)]
    assert stripe_api.charge_of(paid["payment_intent"])["amount_refunded"] == 42000
    assert figures(pool) == (50000, 42000, 0) and escrow(x) == 16000
    ledger_check_passes(runner)


def test_a_dashboard_refund_after_stripe_made_our_waiting_refund_is_for_a_person_and_ours_is_booked(
        pw, client, stripe_api, runner):
    """The worker asked Stripe (the refund of all 500.00 was made) and died before
    booking it; then a dashboard refund came: the sponsor really got more than
    the pool held, which a person must see. Our refund is still booked once."""
    pool, paid = funded_by_card(pw, client, stripe_api)
    end(pool)
    row_id = rails.begin_card_return(pool.id)
    db.session.commit()
    row = db.session.get(PoolRefund, row_id)
    stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "50000",
                              "metadata[pool_id]": str(pool.id), "metadata[pool_refund_id]": str(row_id)},
                             row.idempotency_key)
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dash-y")
    post_event(client, "refund.updated", dashboard, "evt_dash_y")
    assert delivery("evt_dash_y").status is DeliveryStatus.failed
    assert "check by hand" in delivery("evt_dash_y").outcome
    assert rails.return_due() == {"refunded": [pool.id], "waiting": []}
    assert len(stripe_api.refunds) == 2  # ours found by its row id, not made again
    assert figures(pool) == (50000, 50000, 0)
    ledger_check_passes(runner)


def test_a_lost_dispute_while_our_refund_row_waits_is_not_booked_out_of_the_same_money(
        pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api)
    end(pool)
    rails.begin_card_return(pool.id)
    db.session.commit()
    dispute = stripe_api.dispute(paid["payment_intent"], "lost", amount=20000)
    for n in range(2):
        post_event(client, "charge.dispute.closed", dispute, f"evt_lost_meanwhile_{n}")
        assert delivery(f"evt_lost_meanwhile_{n}").status is DeliveryStatus.processed
    assert figures(pool) == (50000, 20000, 30000)
    rails.return_due()
    rows = list(db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool.id)))
    assert [(r.state, r.amount_minor) for r in rows] == [(PoolRefundState.succeeded, 30000)]
    assert figures(pool) == (50000, 50000, 0)
    ledger_check_passes(runner)


def test_a_dashboard_refund_that_fails_after_it_was_booked_gives_its_money_back_to_the_pool_once(
        pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api)
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "10000"}, "dash-f")
    post_event(client, "refund.updated", dashboard, "evt_dash_ok")
    assert figures(pool) == (50000, 10000, 40000)
    failed = stripe_api.fail_refund(dashboard["id"])
    for n in range(2):  # replayed: once
        assert post_event(client, "refund.failed", failed, f"evt_dash_failed_{n}").status_code == 202
        assert delivery(f"evt_dash_failed_{n}").status is DeliveryStatus.processed
    assert figures(pool) == (50000, 0, 50000)
    # A stale copy of the earlier success, delivered late, books nothing again.
    post_event(client, "refund.updated", dashboard, "evt_dash_ok_late")
    post_event(client, "charge.refunded", stripe_api.charge_of(paid["payment_intent"]), "evt_charge_late")
    assert figures(pool) == (50000, 0, 50000)
    ledger_check_passes(runner)


def test_a_dashboard_refund_whose_failure_arrives_first_is_never_booked(pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api)
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "10000"}, "dash-g")
    failed = stripe_api.fail_refund(dashboard["id"])
    post_event(client, "refund.failed", failed, "evt_dash_failed_first")
    post_event(client, "refund.updated", dashboard, "evt_dash_pending_late")  # the older snapshot, late
    assert figures(pool) == (50000, 0, 50000)
    assert db.session.get(MatchingPool, pool.id).state is PoolState.funded
    ledger_check_passes(runner)


def a_stray_payment(pool: MatchingPool, stripe_api) -> dict:
    """A second card payment naming the pool (another Checkout for it, paid): never booked."""
    from marketplace.money import Money
    from marketplace.payments import stripe_client

    session_id, _url = stripe_client.create_pool_checkout_session(
        pool.id, 99, Money(30000, "USD"), pool_name=pool.name, success_url="http://localhost/a",
        cancel_url="http://localhost/b")
    return stripe_api.pay(session_id)


def test_a_refund_and_a_lost_dispute_of_a_payment_the_pool_never_booked_take_nothing_from_it(
        pw, client, stripe_api, runner):
    """The sponsor paid twice; the second payment was failed for a person, who
    refunded it in Stripe as told. Its refund (and a chargeback on it) is not
    the pool's money going back: the pool keeps all it holds."""
    pool, _paid = funded_by_card(pw, client, stripe_api)
    stray = a_stray_payment(pool, stripe_api)
    post_event(client, "checkout.session.completed", stray, "evt_stray_paid")
    assert delivery("evt_stray_paid").status is DeliveryStatus.failed
    refund = stripe_api.create_refund({"payment_intent": stray["payment_intent"], "amount": "20000"}, "dash-stray")
    post_event(client, "charge.refunded", stripe_api.charge_of(stray["payment_intent"]), "evt_stray_refunded")
    post_event(client, "refund.updated", refund, "evt_stray_refund")
    dispute = stripe_api.dispute(stray["payment_intent"], "lost", amount=10000)
    post_event(client, "charge.dispute.closed", dispute, "evt_stray_dispute")
    for event_id in ("evt_stray_refunded", "evt_stray_refund", "evt_stray_dispute"):
        assert delivery(event_id).status is DeliveryStatus.processed, delivery(event_id).outcome
        assert "not the payment" in delivery(event_id).outcome
    assert figures(pool) == (50000, 0, 50000)
    ledger_check_passes(runner)


def test_a_refund_of_a_card_payment_naming_a_transfer_funded_pool_takes_nothing_from_it(
        pw, client, stripe_api, runner):
    pool = pw.pool(50000)  # funded by a bank transfer the fiscal host confirmed
    db.session.commit()
    stray = a_stray_payment(pool, stripe_api)
    stripe_api.create_refund({"payment_intent": stray["payment_intent"], "amount": "30000"}, "dash-t")
    post_event(client, "charge.refunded", stripe_api.charge_of(stray["payment_intent"]), "evt_transfer_pool_refund")
    assert figures(pool) == (50000, 0, 50000)
    ledger_check_passes(runner)


def test_a_paid_session_in_another_currency_funds_nothing_and_is_for_a_person(pw, client, stripe_api, runner):
    from tests.pools.test_pool_card import a_card_pool

    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    post_event(client, "checkout.session.completed", {**paid, "currency": "eur"}, "evt_eur")
    assert delivery("evt_eur").status is DeliveryStatus.failed
    assert figures(pool) == (0, 0, 0)
    assert db.session.get(MatchingPool, pool.id).state is PoolState.awaiting_budget
    ledger_check_passes(runner)


def test_a_session_naming_a_pool_that_does_not_exist_waits_and_books_nothing(pw, client, stripe_api, runner):
    from tests.pools.test_pool_card import a_card_pool

    pool = a_card_pool(pw)
    paid = stripe_api.pay(pool.checkout_session_id)
    ghost = {**paid, "id": "cs_ghost", "payment_intent": "pi_ghost", "client_reference_id": "pool-999999",
             "metadata": {"pool_id": "999999"}}
    post_event(client, "checkout.session.completed", ghost, "evt_ghost")
    assert delivery("evt_ghost").status is DeliveryStatus.waiting
    assert figures(pool) == (0, 0, 0)
    ledger_check_passes(runner)


def test_a_pledges_checkout_whose_pledge_id_is_a_pool_id_is_never_taken_for_the_pool(pw, client, stripe_api):
    """Pledges and pools count ids apart: a pledge's session names ``pledge_id`` N
    and ``client_reference_id`` "N"; pool N must not be funded by it."""
    from marketplace.payments import pool_events
    from tests.pools.test_pool_card import a_card_pool

    pool = a_card_pool(pw)
    pledge_session = {"id": "cs_pledge_x", "object": "checkout.session", "client_reference_id": str(pool.id),
                      "metadata": {"pledge_id": str(pool.id)}, "payment_intent": "pi_pledge_x",
                      "payment_status": "paid", "amount_total": 50000, "currency": "usd"}
    assert not pool_events.is_pool_object(pledge_session)
    assert pool_events.named_pool_id({**pledge_session, "client_reference_id": f"pool-{pool.id}"}) == pool.id
    post_event(client, "checkout.session.completed", pledge_session, "evt_pledge_like")
    assert delivery("evt_pledge_like").status is not DeliveryStatus.processed
    assert figures(pool) == (0, 0, 0)


def test_a_payment_confirmed_after_the_window_closed_matches_nothing_and_goes_back_whole(
        pw, client, stripe_api, runner):
    from datetime import timedelta

    from marketplace.pools import service as pools
    from marketplace.timeutil import utcnow
    from tests.pools.test_pool_card import a_card_pool

    now = utcnow()
    pool = a_card_pool(pw, starts_at=now - timedelta(days=3), ends_at=now + timedelta(seconds=2), sdgs=[3])
    paid = stripe_api.pay(pool.checkout_session_id)
    db.session.execute(MatchingPool.__table__.update().where(MatchingPool.id == pool.id)
                       .values(ends_at=now - timedelta(days=1)))  # the window closed before Stripe told us
    db.session.commit()
    post_event(client, "checkout.session.completed", paid, "evt_paid_after_window")
    x = pw.item(3)
    pw.pledge(person("late@example.org"), x, 8000)
    assert escrow(x) == 8000  # no match from a pool whose window is over
    assert pools.end_due() == [pool.id]
    assert rails.return_due() == {"refunded": [pool.id], "waiting": []}
    assert figures(pool) == (50000, 50000, 0)
    ledger_check_passes(runner)


def test_a_refund_stripe_made_for_a_row_withdrawn_since_is_booked_as_money_that_left(
        pw, client, stripe_api, runner):
    """A killed worker's request for our row reached Stripe only after a dashboard
    refund had withdrawn the row: the refund names a row that is gone. Its money
    left all the same, so it is booked like a dashboard refund, not taken for ours."""
    pool, paid = funded_by_card(pw, client, stripe_api)
    end(pool)
    withdrawn = rails.begin_card_return(pool.id)
    db.session.commit()
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dash-w")
    post_event(client, "refund.updated", dashboard, "evt_dash_w")
    assert db.session.get(PoolRefund, withdrawn) is None
    late = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "10000",
                                     "metadata[pool_id]": str(pool.id), "metadata[pool_refund_id]": str(withdrawn)},
                                    f"pool-refund-{withdrawn}")
    post_event(client, "refund.updated", late, "evt_late_ours")
    assert delivery("evt_late_ours").status is DeliveryStatus.processed
    assert figures(pool) == (50000, 15000, 35000)
    rails.return_due()
    assert figures(pool) == (50000, 50000, 0)
    assert stripe_api.charge_of(paid["payment_intent"])["amount_refunded"] == 50000
    ledger_check_passes(runner)


def test_a_refund_for_a_withdrawn_row_that_fails_gives_its_money_back_once(pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api)
    end(pool)
    withdrawn = rails.begin_card_return(pool.id)
    db.session.commit()
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dash-v")
    post_event(client, "refund.updated", dashboard, "evt_dash_v")
    late = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "10000",
                                     "metadata[pool_id]": str(pool.id), "metadata[pool_refund_id]": str(withdrawn)},
                                    f"pool-refund-{withdrawn}")
    post_event(client, "refund.updated", late, "evt_late_v")
    assert figures(pool) == (50000, 15000, 35000)
    failed = stripe_api.fail_refund(late["id"])
    for n in range(2):
        post_event(client, "refund.failed", failed, f"evt_late_v_failed_{n}")
    assert figures(pool) == (50000, 5000, 45000)
    ledger_check_passes(runner)


def test_a_chargeback_lost_after_the_pool_gave_its_money_back_is_for_a_person_and_books_nothing(
        pw, client, stripe_api, runner):
    """80.00 of the sponsor's 500.00 matched a pledge; the 420.00 left went back
    by card; then the sponsor's bank took the other 80.00 in a chargeback.
    That is the commons' loss, not the pool's money: nothing is booked out of
    the pool (it holds nothing), the event is failed for a person, every time."""
    pool, paid = funded_by_card(pw, client, stripe_api, sdgs=[3], cap_per_pledge_minor=10000)
    x = pw.item(3)
    pw.pledge(person("b@example.org"), x, 8000)
    end(pool)
    rails.return_due()
    assert figures(pool) == (50000, 42000, 0)
    dispute = stripe_api.dispute(paid["payment_intent"], "lost", amount=8000)
    for n in range(2):
        post_event(client, "charge.dispute.closed", dispute, f"evt_lost_after_{n}")
        assert delivery(f"evt_lost_after_{n}").status is DeliveryStatus.failed
        assert "check by hand" in delivery(f"evt_lost_after_{n}").outcome
    assert figures(pool) == (50000, 42000, 0) and escrow(x) == 16000
    ledger_check_passes(runner)
