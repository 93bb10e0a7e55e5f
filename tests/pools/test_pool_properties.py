"""Random pools (funded by transfer or by card), rounds, pledges, refunds,
items closed without the work, pool ends, cancellations and returns (recorded
by the fiscal host, or refunded by card, some of those refunds failing) keep
`flask ledger check` clean and, for every pool, money in = matched +
returned + held, after every step; for a card-funded pool, what Stripe has
refunded of its payment is what the ledger says went back to the sponsor."""
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.pools import queries, rails
from marketplace.pools import service as pools
from marketplace.pools.models import (
    RETURNING_STATES,
    MatchingPool,
    PoolKind,
    PoolMatch,
    PoolRefund,
    PoolRefundState,
)
from marketplace.standins.stripe import LocalStripe
from marketplace.timeutil import utcnow
from tests.pools.helpers import PoolWorld, person

caps = st.one_of(st.none(), st.integers(1, 50_000))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("pool"), st.sampled_from([50, 100, 200]), st.integers(1, 200_000), caps, caps, caps),
        st.tuples(st.just("round"), st.integers(1, 200_000), st.one_of(st.none(), st.integers(1, 10_000))),
        st.tuples(st.just("pledge"), st.integers(0, 3), st.integers(0, 3), st.integers(1, 100_000)),
        st.tuples(st.just("refund"), st.integers(0, 40), st.integers(1, 100_000)),
        st.tuples(st.just("close_item"), st.integers(0, 3)),
        st.tuples(st.just("end"), st.integers(0, 10)),
        st.tuples(st.just("return"), st.integers(0, 10)),
        st.tuples(st.just("card_pool"), st.sampled_from([50, 100, 200]), st.integers(50, 200_000), caps),
        st.tuples(st.just("cancel"), st.integers(0, 10)),
        st.tuples(st.just("card_returns")),
        st.tuples(st.just("refund_fails"), st.integers(0, 10)),
    ),
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_any_sequence_keeps_pool_money_in_equal_to_matched_returned_and_held(app, session, steps):
    savepoint = session.begin_nested()
    stripe_api = LocalStripe()  # one per example: its objects never outlive the example's rows
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe_api.url)
    try:
        world = PoolWorld("prop")
        funders = [person(f"prop-f{n}@example.org") for n in range(4)]
        items = [world.item(3), world.item(3), world.item(4), world.item(3)]
        made: list[int] = []
        created: list[int] = []
        now = utcnow()
        for number, step in enumerate(steps):
            kind = step[0]
            if kind == "pool":
                _, ratio, budget, per_pledge, per_funder, per_item = step
                created.append(world.pool(budget, ratio_percent=ratio, cap_per_pledge_minor=per_pledge,
                                          cap_per_funder_minor=per_funder, cap_per_item_minor=per_item,
                                          ends_at=now + timedelta(days=30, minutes=number)).id)
            elif kind == "round":
                _, budget, cap_bps = step
                created.append(world.round(budget, item_cap_bps=cap_bps,
                                           ends_at=now + timedelta(days=30, minutes=number)).id)
            elif kind == "pledge":
                _, funder, item, amount = step
                made.append(world.pledge(funders[funder], items[item], amount, rail=Rail.bank_transfer).id)
            elif kind == "refund" and made:
                _, index, amount = step
                pledge = session.get(Pledge, made[index % len(made)])
                if pledge.state in (PledgeState.held, PledgeState.partially_refunded):
                    pledges.refund(pledge.id, min(amount, pledge.held_minor), refund_id=f"prop-{number}",
                                   actor="test")
                    event("refund")
            elif kind == "close_item":
                if pools.return_item_matches(items[step[1]], why="not_planned"):
                    event("matches back from a closed item")
            elif kind == "end" and created:
                pool = session.get(MatchingPool, created[step[1] % len(created)])
                if pools.end_due(pool.ends_at + timedelta(seconds=1)):
                    event("pool ended")
            elif kind == "return" and created:
                pool = session.get(MatchingPool, created[step[1] % len(created)])
                if pool.state in RETURNING_STATES and pools.pool_balance(pool) > 0 and pool.rail != "card":
                    pools.record_return(pool.id, reference=f"back-{number}", actor=world.admin)
                    event("returned to the sponsor")
            elif kind == "card_pool":
                _, ratio, budget, per_pledge = step
                pool = pools.create_pool(world.sponsor, name="Card", currency="USD", budget_minor=budget,
                                         ratio_percent=ratio, cap_per_pledge_minor=per_pledge,
                                         starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=30, minutes=number))
                rails.start_checkout(pool.id, success_url="http://localhost/s", cancel_url="http://localhost/c")
                paid = stripe_api.pay(pool.checkout_session_id)
                assert rails.card_paid(pool, paid["id"], paid["payment_intent"], Money(budget, "USD"))
                created.append(pool.id)
            elif kind == "cancel" and created:
                pool = session.get(MatchingPool, created[step[1] % len(created)])
                if rails.cancel_refusal(pool) is None and pool.state not in RETURNING_STATES:
                    assert rails.cancel_pool(pool.id, actor=world.sponsor)
                    event("pool cancelled")
            elif kind == "card_returns":
                if rails.return_due()["refunded"]:
                    event("refunded to the sponsor's card")
            elif kind == "refund_fails":
                succeeded = list(session.scalars(select(PoolRefund).where(
                    PoolRefund.state == PoolRefundState.succeeded).order_by(PoolRefund.id)))
                if succeeded:
                    row = succeeded[step[1] % len(succeeded)]
                    failed = stripe_api.fail_refund(row.refund_id)
                    assert rails.refund_failed(session.get(MatchingPool, row.pool_id), failed)
                    event("a card refund failed")
            session.flush()
            assert check() == [], step
            for pool in session.scalars(select(MatchingPool).where(MatchingPool.id.in_(created))):
                figures = queries.figures(pool)
                assert figures["received"] == figures["matched"] + figures["returned"] + figures["remaining"], step
                assert figures["remaining"] >= 0
                if pool.rail == "card" and pool.payment_intent_id:
                    refunded_at_stripe = stripe_api.charge_of(pool.payment_intent_id)["amount_refunded"]
                    assert refunded_at_stripe == pool.returned_minor, step
                if pool.kind is PoolKind.ratio and pool.cap_per_funder_minor is not None:
                    for funder in funders:
                        assert pools._net_matched(pool.id, funder_id=funder.id) <= pool.cap_per_funder_minor
            for match in session.scalars(select(PoolMatch).where(PoolMatch.pledge_id.is_not(None))):
                pool = session.get(MatchingPool, match.pool_id)
                assert match.amount_minor <= match.pledge.amount_minor * pool.ratio_percent // 100
    finally:
        savepoint.rollback()
        app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        stripe_api.stop()
