"""Matched money is paid out with its pledge, and comes back with a returned payout."""
from datetime import timedelta

from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutRail, PayoutState
from marketplace.pools import service as pools
from marketplace.pools.models import MatchState, PoolMatch
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW, World, balance, escrow


def _pool(world: World, budget: int):
    now = utcnow()
    sponsor = world.user("pool-sponsor@example.org")  # not the admin who confirms its money
    pool = pools.create_pool(sponsor, name="Match", currency="USD", budget_minor=budget,
                             starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=30))
    pools.confirm_budget(pool.id, Money(budget, "USD"), reference="R", received_on=now.date(), actor=world.admin)
    return pool


def test_a_100_pledge_matched_100_pays_out_200_gross_180_net(session, client):
    world = World(session, client)
    pool = _pool(world, 50000)
    item = world.issue(601)
    world.fund(item, 10000)
    assert escrow(item.id) == 20000
    ama = world.implementor("ama@example.org", github_id=6001)
    world.claim(item, ama)
    world.pull(701, "Fixes #601", author_id=6001, merged=True)
    [payout] = world.payouts_of(item)
    assert (payout.gross_minor, payout.fee_minor) == (20000, 2000)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert escrow(item.id) == 0
    [match] = session.query(PoolMatch).filter_by(item_id=item.id).all()
    assert (match.state, match.payout_id) == (MatchState.released, payout.id)
    assert pools.pool_balance(pool) == 40000
    assert check() == []


def test_a_returned_manual_payout_holds_its_match_again(session, client):
    world = World(session, client)
    _pool(world, 50000)
    item = world.issue(602)
    world.fund(item, 5000)
    ama = world.implementor("ama2@example.org", github_id=6002, country="KE")
    payouts.choose_manual_rail(ama.id, "M-Pesa 0700")
    world.claim(item, ama)
    world.pull(702, "Fixes #602", author_id=6002, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert payout.shares[0].rail is PayoutRail.manual
    payouts.return_manual_payout(payout.id, reason="account closed", admin=world.admin)
    assert payout.state is PayoutState.returned
    assert escrow(item.id) == 10000
    [match] = session.query(PoolMatch).filter_by(item_id=item.id).all()
    assert (match.state, match.payout_id) == (MatchState.held, None)
    assert balance(AccountKind.platform_fees) == 0
    assert check() == []
