"""Issue 16's ratio-matching scenarios, with their exact values (USD, minor units)."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pools import service as pools
from marketplace.pools.models import MatchState, PoolMatch, PoolState
from marketplace.timeutil import utcnow
from tests.pools.helpers import escrow, held, person


def matches_of(pledge) -> list[int]:
    from marketplace.extensions import db

    return [m.amount_minor for m in db.session.scalars(
        select(PoolMatch).where(PoolMatch.pledge_id == pledge.id).order_by(PoolMatch.id))]


def test_the_1_to_1_sdg3_pool_of_500_matches_refunds_and_returns_330_to_the_sponsor(pw, stripe_api):
    pool = pw.pool(50000, ratio_percent=100, cap_per_pledge_minor=10000, cap_per_funder_minor=15000, sdgs=[3])
    a, b = person("a@example.org"), person("b@example.org")
    x, y, z = pw.item(3), pw.item(3), pw.item(4)
    # 1. A pledges 80.00 to X (SDG 3): matched 80.00.
    first = pw.pledge(a, x, 8000)
    assert (matches_of(first), held(pool), escrow(x)) == ([8000], 42000, 16000)
    # 2. A pledges 100.00 to Y: 70.00, the rest of A's 150.00 funder cap.
    second = pw.pledge(a, y, 10000)
    assert (matches_of(second), held(pool), escrow(y)) == ([7000], 35000, 17000)
    # 3. B pledges 50.00 to Z (SDG 4): not eligible.
    third = pw.pledge(b, z, 5000)
    assert (matches_of(third), held(pool), escrow(z)) == ([], 35000, 5000)
    # 4. B pledges 400.00 to X: 100.00, the per-pledge cap.
    fourth = pw.pledge(b, x, 40000)
    assert (matches_of(fourth), held(pool), escrow(x)) == ([10000], 25000, 66000)
    # 5. A takes the first pledge back: A gets 80.00, the match's 80.00 goes to the pool.
    assert pledges.self_service_refund(first.id, actor="funder")
    assert ledger.balance(ledger.account(AccountKind.refunds), "USD") == 8000
    assert (held(pool), escrow(x)) == (33000, 50000)
    match = pw_match(first)
    assert (match.state, match.returned_minor) == (MatchState.returned, 8000)
    assert check() == []
    # 6. The window ends: the 330.00 the pool holds go back to the sponsor.
    assert pools.end_due(utcnow() + timedelta(days=31)) == [pool.id]
    assert pool.state is PoolState.ended
    assert pools.record_return(pool.id, reference="BACK-1", actor=pw.admin) == 33000
    assert held(pool) == 0
    assert ledger.balance(ledger.account(AccountKind.sponsor_returns, pool_id=pool.id), "USD") == 33000
    assert (pool.received_minor, pool.returned_minor) == (50000, 33000)
    assert check() == []


def pw_match(pledge) -> PoolMatch:
    from marketplace.extensions import db

    return db.session.scalar(select(PoolMatch).where(PoolMatch.pledge_id == pledge.id))


def test_a_200_percent_pool_of_100_matches_60_then_the_last_40(pw):
    pool = pw.pool(10000, ratio_percent=200)
    funder = person("f@example.org")
    item = pw.item(3)
    assert matches_of(pw.pledge(funder, item, 3000)) == [6000]
    assert matches_of(pw.pledge(funder, item, 3000)) == [4000]
    assert held(pool) == 0
    assert matches_of(pw.pledge(funder, item, 3000)) == []  # exhausted
    assert escrow(item) == 9000 + 10000


def test_the_sponsor_maintainers_claimants_and_small_pledges_are_not_matched(pw):
    from marketplace.claims.models import Claim, ClaimState
    from marketplace.extensions import db
    from marketplace.projects.models import ProjectMaintainer

    pool = pw.pool(100000, min_pledge_minor=1000)
    item = pw.item(3)
    maintainer = db.session.scalar(select(ProjectMaintainer).where(
        ProjectMaintainer.project_id == pw.projects[3].id)).user
    claimant = person("claimant@example.org")
    db.session.add(Claim(item_id=item.id, claimant_id=claimant.id, state=ClaimState.requested, plan="p", deadline=utcnow().date() + timedelta(days=5),
                         estimate_days=3))
    db.session.flush()
    for funder, amount in ((pw.sponsor, 5000), (maintainer, 5000), (claimant, 5000), (person("s@example.org"), 999)):
        assert matches_of(pw.pledge(funder, item, amount)) == []
    assert matches_of(pw.pledge(person("ok@example.org"), item, 1000)) == [1000]
    assert held(pool) == 99000


def test_a_pool_before_its_budget_arrives_or_after_its_window_matches_nothing(pw):
    now = utcnow()
    unfunded = pools.create_pool(pw.sponsor, name="Later", currency="USD", budget_minor=10000,
                                 starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1))
    item = pw.item(3)
    funder = person("f@example.org")
    assert matches_of(pw.pledge(funder, item, 1000)) == []
    assert pools.confirm_budget(unfunded.id, Money(10000, "USD"), reference="R", received_on=now.date(),
                                actor=pw.admin)
    assert not pools.confirm_budget(unfunded.id, Money(10000, "USD"), reference="R", received_on=now.date(),
                                    actor=pw.admin)  # confirmed twice: counted once
    assert matches_of(pw.pledge(funder, item, 1000)) == [1000]
    pools.end_due(now + timedelta(days=2))
    assert matches_of(pw.pledge(funder, pw.item(3), 1000)) == []


def test_a_partial_refund_gives_back_the_match_in_proportion(pw, stripe_api):
    pool = pw.pool(100000, ratio_percent=50)
    item = pw.item(3)
    pledge = pw.pledge(person("f@example.org"), item, 10001)  # match 5000 (rounded down)
    assert matches_of(pledge) == [5000]
    assert pledges.refund_through_rail(pledge.id, 2501, reason="test", actor="admin")
    # 7500 of 10001 still held: the match keeps 5000 × 7500 // 10001 = 3749.
    assert (pw_match(pledge).held_minor, held(pool), escrow(item)) == (3749, 96251, 7500 + 3749)


def test_an_item_closed_without_the_work_gives_its_matches_back_at_once(pw):
    from marketplace.pools.service import return_item_matches

    pool = pw.pool(100000)
    item = pw.item(3)
    pledge = pw.pledge(person("f@example.org"), item, 4000)
    assert return_item_matches(item, why="not_planned") == 4000
    assert (held(pool), escrow(item), pledge.held_minor) == (100000, 4000, 4000)


@pytest.mark.parametrize("currency", ["EUR"])
def test_a_pledge_in_another_currency_is_not_matched(pw, currency):
    pool = pw.pool(100000)
    from marketplace.pledges.models import Rail

    item = pw.item(3)
    pledge = pledges.create(item, person("f@example.org").id, Money(1000, currency), rail=Rail.card, actor="t")
    assert pledges.mark_received(pledge.id, Money(1000, currency), actor="t")
    assert (matches_of(pledge), held(pool)) == ([], 100000)


def test_an_item_closed_as_not_planned_on_the_forge_gives_the_pool_its_80_while_the_funder_decides(pw):
    from marketplace.backlog import ending
    from marketplace.backlog.models import ItemState

    pool = pw.pool(50000)
    item = pw.item(3)
    pledge = pw.pledge(person("f@example.org"), item, 8000)
    assert (held(pool), escrow(item)) == (42000, 16000)
    item.state, item.state_reason, item.forge_closed_at = ItemState.closed, "not_planned", utcnow()
    ending.after_forge_change(item, created=False, was_state=ItemState.open, was_reason=None,
                              private_reason=None, when=utcnow(), actor="test")
    assert (held(pool), escrow(item), pledge.held_minor) == (50000, 8000, 8000)
    assert pw_match(pledge).state is MatchState.returned


def test_a_dispute_lost_sends_the_match_back_to_the_pool_not_to_the_funder(pw):
    pool = pw.pool(50000, ratio_percent=50)
    item = pw.item(3)
    pledge = pw.pledge(person("f@example.org"), item, 6000)
    assert pledges.refund(pledge.id, 6000, refund_id="dispute:dp_1", actor="stripe", to=AccountKind.disputes)
    assert (held(pool), escrow(item)) == (50000, 0)
    assert ledger.balance(ledger.account(AccountKind.disputes), "USD") == 6000
    assert ledger.balance(ledger.account(AccountKind.refunds), "USD") == 0
