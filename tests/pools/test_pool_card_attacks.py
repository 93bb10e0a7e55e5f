"""Attacks on a card-funded pool's money paths (issue 16): Stripe's events
for the pool arriving late, replayed, stale or in another order than the
refunds we made, a worker killed between the refund row and Stripe. After
each, ``flask ledger check`` passes and money in = matched + returned + held."""
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
    dashboard and its event came. Booking both would return 470.00 of 420.00."""
    pool, paid = funded_by_card(pw, client, stripe_api, sdgs=[3], cap_per_pledge_minor=10000)
    x = pw.item(3)
    pw.pledge(person("a@example.org"), x, 8000)
    end(pool)
    row_id = rails.begin_card_return(pool.id)
    db.session.commit()  # step one committed; the worker dies here
    dashboard = stripe_api.create_refund({"payment_intent": paid["payment_intent"], "amount": "5000"}, "dash-x")
    assert post_event(client, "refund.updated", dashboard, "evt_dash_x").status_code == 202
    # The dashboard refund cannot come out of money our own refund row already claims: a person looks.
    assert delivery("evt_dash_x").status is DeliveryStatus.failed
    assert "check by hand" in delivery("evt_dash_x").outcome
    rails.return_due()
    row = db.session.get(PoolRefund, row_id)
    db.session.refresh(row)
    assert (row.state, row.amount_minor) == (PoolRefundState.succeeded, 42000)
    assert figures(pool) == (50000, 42000, 0) and escrow(x) == 16000
    ledger_check_passes(runner)


def test_a_lost_dispute_while_our_refund_row_waits_is_not_booked_out_of_the_same_money(
        pw, client, stripe_api, runner):
    pool, paid = funded_by_card(pw, client, stripe_api)
    end(pool)
    rails.begin_card_return(pool.id)
    db.session.commit()
    dispute = stripe_api.dispute(paid["payment_intent"], "lost", amount=20000)
    post_event(client, "charge.dispute.closed", dispute, "evt_lost_meanwhile")
    assert delivery("evt_lost_meanwhile").status is DeliveryStatus.failed
    rails.return_due()
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
