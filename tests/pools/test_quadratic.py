"""Issue 16's quadratic-funding scenario, exact (USD, pool 1,000.00 = 100000 minor units)."""
from datetime import timedelta

import pytest

from marketplace.ledger.check import check
from marketplace.pools import quadratic
from marketplace.pools import service as pools
from marketplace.pools.models import PoolState
from marketplace.timeutil import utcnow
from tests.pools.helpers import escrow, held, person

RAW = {1: 0, 2: 30000, 3: 990000}


def test_raw_matches_of_the_scenario_are_0_30000_and_990000():
    assert quadratic.raw_match([10000]) == 0
    assert quadratic.raw_match([2500] * 4) == 30000
    assert quadratic.raw_match([100] * 100) == 990000


def test_a_pool_of_100000_is_scaled_to_0_2941_and_97059():
    assert quadratic.distribute(RAW, 100000) == ({1: 0, 2: 2941, 3: 97059}, 0)


def test_a_50_percent_cap_gives_0_30000_50000_and_leaves_20000_for_the_sponsor():
    assert quadratic.distribute(RAW, 100000, cap_minor=50000) == ({1: 0, 2: 30000, 3: 50000}, 20000)


def test_exact_square_roots_are_not_rounded_down_a_unit():
    # √2 + √8 = 3√2: (3√2)² − 10 = 8 exactly, though the roots are irrational.
    assert quadratic.raw_match([2, 8]) == 8
    assert quadratic.raw_match([1, 1]) == 2
    # (√1 + √2)² − 3 = 2√2 = 2.828…
    assert quadratic.raw_match([1, 2]) == 2


def test_a_cap_below_every_share_fills_each_item_to_it_and_returns_the_rest():
    assert quadratic.distribute({1: 500, 2: 500}, 1000, cap_minor=300) == ({1: 300, 2: 300}, 400)


def test_capped_items_give_their_excess_to_the_others_in_proportion():
    # Raw 900 and 100 of a pool of 500, item cap 300: item 1 is fixed at 300, item 2 takes 100 (its raw) ...
    assert quadratic.distribute({1: 900, 2: 100}, 500, cap_minor=300) == ({1: 300, 2: 100}, 100)
    # ... and with raws 900, 300, 300 and a pool of 600 capped at 250: 250 + 175 + 175.
    assert quadratic.distribute({1: 900, 2: 300, 3: 300}, 600, cap_minor=250) == ({1: 250, 2: 175, 3: 175}, 0)


@pytest.mark.parametrize("cap_bps, expected, left", [
    (None, (0, 2941, 97059), 0),
    (5000, (0, 30000, 50000), 20000),
])
def test_the_round_scenario_moves_exactly_these_shares_once(pw, cap_bps, expected, left):
    start = utcnow() - timedelta(hours=1)
    pool = pw.round(100000, item_cap_bps=cap_bps, starts_at=start, ends_at=start + timedelta(days=7))
    a, b, c = pw.item(3), pw.item(3), pw.item(3)
    pw.pledge(person("solo@example.org"), a, 10000)
    for n in range(4):
        pw.pledge(person(f"b{n}@example.org"), b, 2500)
    for n in range(100):
        pw.pledge(person(f"c{n}@example.org"), c, 100)
    # A funder splitting 100.00 into four pledges to one item counts once with 100.00.
    splitter = person("split@example.org")
    d = pw.item(3)
    for _ in range(4):
        pw.pledge(splitter, d, 2500)
    # An unverified funder does not count.
    pw.pledge(person("nobody@example.org", verified=False), d, 2500)
    lines, _left = pools.round_distribution(pool)
    by_item = {line.item.id: line for line in lines}
    assert (by_item[d.id].funders, by_item[d.id].contributed_minor, by_item[d.id].raw_minor) == (1, 10000, 0)
    assert [by_item[i.id].raw_minor for i in (a, b, c)] == [0, 30000, 990000]
    assert tuple(by_item[i.id].share_minor for i in (a, b, c)) == expected  # the preview
    assert held(pool) == 100000  # nothing moved during the round
    end = start + timedelta(days=7, minutes=1)
    assert pools.end_due(end) == [pool.id]
    assert (escrow(a), escrow(b), escrow(c)) == (10000, 10000 + expected[1], 10000 + expected[2])
    assert held(pool) == left
    assert pool.state is PoolState.ended and pool.executed_at is not None
    assert not pools.execute_round(pool.id, now=end)  # a second run moves nothing
    assert pools.end_due(end) == []
    assert escrow(c) == 10000 + expected[2]
    if left:
        assert pools.record_return(pool.id, reference="BACK", actor=pw.admin) == left
    assert check() == []


def test_an_excluded_funder_does_not_count(pw):
    start = utcnow() - timedelta(hours=1)
    pool = pw.round(100000, starts_at=start, ends_at=start + timedelta(days=7))
    item = pw.item(3)
    funders = [person(f"e{n}@example.org") for n in range(3)]
    for funder in funders:
        pw.pledge(funder, item, 2500)
    assert pools.round_distribution(pool)[0][0].raw_minor == 15000  # (3×50)² − 7500
    pools.exclude_from_round(pool.id, funders[0].id, reason="one person, three accounts", admin=pw.admin)
    assert pools.round_distribution(pool)[0][0].raw_minor == 5000  # (2×50)² − 5000


def test_the_end_pools_job_ends_a_round_once_and_leaves_what_no_item_took_for_the_sponsor(pw):
    from jobs.money import end_pools

    now = utcnow()
    pool = pw.round(50000, starts_at=now - timedelta(days=8), ends_at=now - timedelta(minutes=1))
    assert end_pools() == [pool.id]
    assert end_pools() == []
    assert (pool.state, held(pool)) == (PoolState.ended, 50000)
    assert pool.executed_at is not None
    assert check() == []
