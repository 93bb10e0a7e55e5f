"""Largest-remainder splits and the percentages maintainers type."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.money import fee_of
from marketplace.payouts.split import largest_remainder, parse_percentages


def test_escrow_10_01_split_equally_among_three():
    gross = 1001
    fee = fee_of(gross, 1000)
    shares = largest_remainder(gross - fee, [1, 1, 1])
    assert (fee, shares) == (100, [301, 300, 300])
    assert fee + sum(shares) == gross


def test_escrow_10_01_split_70_30():
    fee = fee_of(1001, 1000)
    assert largest_remainder(1001 - fee, parse_percentages(["70", "30"])) == [631, 270]


def test_ties_go_to_the_earlier_share():
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(0, [1, 2]) == [0, 0]


@pytest.mark.parametrize("bad", [[], [0, 1], [-1, 2], [1.5]])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError):
        largest_remainder(100, bad)


@pytest.mark.parametrize("texts,message", [
    (["70", "20"], "add up to 100"),
    (["33.333", "66.667"], "two decimals"),
    (["0", "100"], "above 0"),
    (["abc", "100"], "not a percentage"),
    (["NaN", "100"], "not a percentage"),
    (["150", "-50"], "at most 100"),
])
def test_bad_percentages_are_refused_with_a_message(texts, message):
    with pytest.raises(ValueError, match=message):
        parse_percentages(texts)


def test_percentages_with_decimals():
    assert parse_percentages(["33.33", "33.33", "33.34%"]) == [3333, 3333, 3334]


@given(st.integers(min_value=0, max_value=10**12), st.lists(st.integers(min_value=1, max_value=10_000),
                                                           min_size=1, max_size=8))
def test_a_split_is_exact_and_each_share_within_one_unit(total, weights):
    shares = largest_remainder(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights):
        exact = total * weight / sum(weights)
        assert exact - 1 < share < exact + 1
