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
    (["1e2"], "not a percentage"),  # issue 20: Decimal("1e2") is 100, but nobody types that
    (["1E2"], "not a percentage"),
    (["5e1", "5e1"], "not a percentage"),
    (["+50", "50"], "not a percentage"),
    (["Infinity"], "not a percentage"),
    (["50", "5_0"], "not a percentage"),
])
def test_bad_percentages_are_refused_with_a_message(texts, message):
    with pytest.raises(ValueError, match=message):
        parse_percentages(texts)


def test_percentages_with_decimals():
    assert parse_percentages(["33.33", "33.33", "33.34%"]) == [3333, 3333, 3334]


def test_percentages_with_a_decimal_comma_or_a_spaced_percent_sign():
    assert parse_percentages(["62,5", "37.5 %"]) == [6250, 3750]


@given(st.integers(min_value=0, max_value=10**12), st.lists(st.integers(min_value=1, max_value=10_000),
                                                           min_size=1, max_size=8))
def test_a_split_is_exact_and_each_share_within_one_unit(total, weights):
    shares = largest_remainder(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights):
        exact = total * weight / sum(weights)
        assert exact - 1 < share < exact + 1


@pytest.mark.parametrize("total, weights, shares", [
    (10, [1, 2], [3, 7]),  # 3.33 + 6.67: the later share has the larger remainder
    (7, [1, 1, 2], [2, 2, 3]),  # 1.75, 1.75, 3.5: remainders, not sizes, decide
    (5, [3, 1], [4, 1]),  # 3.75 + 1.25
    (1, [1, 99], [0, 1]),
])
def test_left_over_units_go_to_the_largest_remainders_whatever_their_order(total, weights, shares):
    assert largest_remainder(total, weights) == shares


@given(st.integers(min_value=0, max_value=10**9), st.lists(st.integers(min_value=1, max_value=10_000),
                                                          min_size=1, max_size=8))
def test_no_share_left_at_its_floor_has_a_larger_remainder_than_one_rounded_up(total, weights):
    from fractions import Fraction

    shares = largest_remainder(total, weights)
    exact = [Fraction(total * w, sum(weights)) for w in weights]
    rounded_up = [e - int(e) for e, s in zip(exact, shares) if s > int(e)]
    left_down = [e - int(e) for e, s in zip(exact, shares) if s == int(e)]
    assert not rounded_up or not left_down or min(rounded_up) >= max(left_down)


def test_a_bad_split_says_what_a_split_needs():
    with pytest.raises(ValueError, match="^a split needs a non-negative total and positive integer weights$"):
        largest_remainder(-1, [1])


@pytest.mark.parametrize("texts, weights", [
    (["100"], [10_000]),
    (["0.5", "99.5"], [50, 9950]),
    (["0.01", "99.99"], [1, 9999]),
    ([" 70 % ", "30%"], [7000, 3000]),
])
def test_percentages_at_the_edges(texts, weights):
    assert parse_percentages(texts) == weights


@pytest.mark.parametrize("texts, message", [
    (["100.5"], "^'100.5': a percentage above 0 and at most 100, with at most two decimals$"),
    (["100.01"], "^'100.01': a percentage above 0 and at most 100, with at most two decimals$"),
    (["60", "30"], "^the percentages must add up to 100$"),
])
def test_percentages_past_the_edges_are_refused_with_the_exact_message(texts, message):
    with pytest.raises(ValueError, match=message):
        parse_percentages(texts)
