"""A pool raced in two real PostgreSQL sessions: two pledges held at the
same moment never take more than the pool holds."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.pools import service as pools
from marketplace.pools.models import MatchingPool, PoolMatch
from tests.payouts.helpers import race_database_app
from tests.payouts.test_claim_races import at_once
from tests.pools.helpers import PoolWorld, held, person


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
