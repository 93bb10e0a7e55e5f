"""A pool raced in two real PostgreSQL sessions: two pledges held at the
same moment never take more than the pool holds."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.pools import service as pools
from marketplace.pools.models import MatchingPool, PoolMatch
from tests.pools.helpers import PoolWorld, held, person
from tests.races import at_once, race_database_app


@pytest.fixture
def race_app(database_url):
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_pool_race") as app:
        yield app


@pytest.mark.postgres
def test_two_pledges_of_300_held_at_once_against_350_left_match_300_and_50(race_app, monkeypatch):
    with race_app.app_context():
        world = PoolWorld("race")
        pool = world.pool(35000)
        ids = []
        for n in range(2):
            item = world.item(3)
            pledge = pledges.create(item, person(f"racer{n}@example.org").id, Money(30000, "USD"),
                                    rail=Rail.bank_transfer, actor="test")
            ids.append(pledge.id)
            # Accounts made beforehand: two sessions creating one account at once
            # would wait for each other on its unique code, hiding the race.
            ledger.account(AccountKind.item_escrow, item_id=item.id)
        ledger.account(AccountKind.funder_payments)
        db.session.commit()
        pool_id = pool.id
        db.session.remove()

    # Each session, once it has read what the pool holds, waits for the other to
    # have read it too: without the pool's row lock both read 350.00 and match
    # 300.00 each. With it, the second session cannot read before the first
    # commits; the first stops waiting after a second and goes on.
    read_both = threading.Barrier(2, timeout=1)
    balance = pools.pool_balance

    def balance_then_wait(pool):
        amount = balance(pool)
        try:
            read_both.wait()
        except threading.BrokenBarrierError:
            pass
        return amount

    monkeypatch.setattr(pools, "pool_balance", balance_then_wait)

    def hold(pledge_id):
        def run():
            with race_app.app_context():
                try:
                    pledge = db.session.get(Pledge, pledge_id)
                    result = pledges.mark_received(pledge.id, Money(30000, "USD"), actor="test")
                    db.session.commit()
                    return result
                finally:
                    db.session.remove()
        return run

    assert at_once(hold(ids[0]), hold(ids[1])) == [True, True]
    with race_app.app_context():
        matches = sorted(m.amount_minor for m in db.session.scalars(
            select(PoolMatch).where(PoolMatch.pool_id == pool_id)))
        assert matches == [5000, 30000]
        assert held(db.session.get(MatchingPool, pool_id)) == 0
        assert check() == []


@pytest.mark.postgres
def test_a_cancel_and_a_pledge_held_at_the_same_moment_never_both_cancel_and_match(race_app, monkeypatch):
    from marketplace.pools import rails

    with race_app.app_context():
        world = PoolWorld("cancelrace")
        pool = world.pool(35000)
        item = world.item(3)
        pledge = pledges.create(item, person("cancelracer@example.org").id, Money(10000, "USD"),
                                rail=Rail.bank_transfer, actor="test")
        ledger.account(AccountKind.item_escrow, item_id=item.id)
        ledger.account(AccountKind.funder_payments)
        db.session.commit()
        pool_id, pledge_id, sponsor_id = pool.id, pledge.id, world.sponsor.id
        db.session.remove()

    # The cancel, once it has seen no match, waits for the pledge's match to
    # have read the pool too: without the pool's row lock both go on, and a
    # cancelled pool matches. With it, the match cannot read before the cancel commits.
    both_read = threading.Barrier(2, timeout=1)
    refusal, amount = rails.cancel_refusal, pools.match_amount

    def wait():
        try:
            both_read.wait()
        except threading.BrokenBarrierError:
            pass

    def refusal_then_wait(pool):
        found = refusal(pool)
        wait()
        return found

    def amount_after_waiting(*args, **kwargs):
        wait()
        return amount(*args, **kwargs)

    monkeypatch.setattr(rails, "cancel_refusal", refusal_then_wait)
    monkeypatch.setattr(pools, "match_amount", amount_after_waiting)

    def cancel():
        with race_app.app_context():
            try:
                done = rails.cancel_pool(pool_id, actor=db.session.get(User, sponsor_id))
                db.session.commit()
                return done
            except pools.PoolError:
                db.session.rollback()
                return False
            finally:
                db.session.remove()

    def hold():
        with race_app.app_context():
            try:
                done = pledges.mark_received(pledge_id, Money(10000, "USD"), actor="test")
                db.session.commit()
                return done
            finally:
                db.session.remove()

    outcomes = at_once(cancel, hold)
    with race_app.app_context():
        pool = db.session.get(MatchingPool, pool_id)
        matches = list(db.session.scalars(select(PoolMatch).where(PoolMatch.pool_id == pool_id)))
        assert True in outcomes
        assert (pool.state.value == "cancelled") != bool(matches)  # one or the other, never both
        assert held(pool) == (35000 if not matches else 25000)
        assert check() == []


@pytest.mark.postgres
def test_two_returns_of_an_ended_card_pool_at_once_refund_it_once(race_app):
    from marketplace.pools import rails
    from marketplace.pools.models import PoolRefund, PoolRefundState
    from marketplace.standins.stripe import LocalStripe
    from marketplace.timeutil import utcnow

    stripe_api = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe_api.url)
    try:
        with race_app.app_context():
            world = PoolWorld("returnrace")
            now = utcnow()
            pool = pools.create_pool(world.sponsor, name="Card race", currency="USD", budget_minor=40000,
                                     starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1))
            rails.start_checkout(pool.id, success_url="http://localhost/s", cancel_url="http://localhost/c")
            paid = stripe_api.pay(pool.checkout_session_id)
            rails.card_paid(pool, paid["id"], paid["payment_intent"], Money(40000, "USD"))
            pools.end_due(now + timedelta(days=1, seconds=1))
            ledger.account(AccountKind.sponsor_returns, pool_id=pool.id)
            db.session.commit()
            pool_id, intent = pool.id, paid["payment_intent"]
            db.session.remove()

        def give_back():  # what the cron job and the admin's button each do: the row committed, then Stripe asked
            with race_app.app_context():
                try:
                    row_id = rails.begin_card_return(pool_id, retry_failed=True)
                    db.session.commit()
                    sent = row_id is not None and rails.send_card_return(row_id)
                    db.session.commit()
                    return sent
                finally:
                    db.session.remove()

        outcomes = at_once(give_back, give_back)
        with race_app.app_context():
            rows = list(db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool_id)))
            assert sorted(outcomes) == [False, True]
            assert [(r.state, r.amount_minor) for r in rows] == [(PoolRefundState.succeeded, 40000)]
            assert stripe_api.charge_of(intent)["amount_refunded"] == 40000
            pool = db.session.get(MatchingPool, pool_id)
            assert (pool.returned_minor, held(pool)) == (40000, 0)
            assert check() == []
    finally:
        race_app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        stripe_api.stop()
