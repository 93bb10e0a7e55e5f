import pytest

from marketplace.i18n import format_money
from marketplace.money import Money, MoneyError, from_stripe_amount, parse_amount, stripe_amount

ALL = ("USD", "EUR", "GBP", "KES", "INR", "JPY", "KWD", "ISK")


@pytest.mark.parametrize(
    "text, currency, locale, minor",
    [
        ("50.00", "USD", "en", 5000),
        ("50", "USD", "en", 5000),
        ("1,234.5", "USD", "en", 123450),
        ("1.234,50", "EUR", "de", 123450),
        ("2,000", "JPY", "en", 2000),
        ("18.600", "KWD", "en", 18600),
        ("1,00,000", "INR", "en_IN", 10000000),
        ("5", "ISK", "en", 5),
    ],
)
def test_typed_amounts_become_minor_units(text, currency, locale, minor):
    assert parse_amount(text, currency, locale, ALL) == Money(minor, currency)


@pytest.mark.parametrize(
    "text, currency, message",
    [
        ("18.605", "KWD", "KWD card payments take amounts whose last decimal is 0."),
        ("10.005", "USD", "USD amounts have at most 2 decimal places; '10.005' has more."),
        ("2000.5", "JPY", "JPY amounts have at most 0 decimal places; '2000.5' has more."),
        ("0", "USD", "The amount must be more than zero."),
        ("-5", "USD", "The amount must be more than zero."),
        ("ten", "USD", "'ten' is not an amount."),
        ("1e3", "USD", "'1e3' is not an amount."),
        ("NaN", "USD", "'NaN' is not an amount."),
        ("", "USD", "Type an amount."),
        ("5", "XYZ", "XYZ is not a currency the commons accepts"),
        ("99999999999999999", "USD", "This amount is too large."),
    ],
)
def test_bad_amounts_are_refused_with_a_message(text, currency, message):
    with pytest.raises(MoneyError) as excinfo:
        parse_amount(text, currency, "en", ALL)
    assert str(excinfo.value).startswith(message)


def test_stripe_amounts_follow_stripes_currency_rules():
    assert stripe_amount(Money(2000, "JPY")) == 2000
    assert stripe_amount(Money(5000, "USD")) == 5000
    assert stripe_amount(Money(18600, "KWD")) == 18600
    assert stripe_amount(Money(5, "ISK")) == 500
    assert from_stripe_amount(500, "isk") == Money(5, "ISK")
    assert from_stripe_amount(3000, "usd") == Money(3000, "USD")


def test_display_uses_the_currency_exponent(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert format_money(2000, "JPY") == "¥2,000"
        assert format_money(18600, "KWD") == "KWD18.600"
        assert format_money(5000, "USD") == "$50.00"


def test_money_refuses_floats_and_bad_codes():
    with pytest.raises(TypeError):
        Money(50.0, "USD")
    with pytest.raises(ValueError):
        Money(5, "usd")


def test_fees_round_to_the_nearest_unit_ties_to_the_commons():
    from marketplace.money import fee_of

    assert fee_of(5000, 500) == 250
    assert fee_of(3333, 500) == 167  # 166.65 → 167
    assert fee_of(1, 500) == 0  # 0.05 → 0
    assert fee_of(10, 500) == 1  # 0.5 → 1: a tie goes to the commons
    assert fee_of(1001, 1000) == 100  # 100.1 → 100 (issue 6 scenario)
    assert fee_of(1005, 1000) == 101  # 100.5 → 101
    assert fee_of(0, 500) == 0
    assert fee_of(10**15, 750) == 75 * 10**12


@pytest.mark.parametrize("gross, rate_bps, fee", [
    # Just under a half (x.4999) rounds down, a tie up, just over (x.5001) up — at odd rates.
    (7857, 7, 5),  # 5.4999
    (8003, 333, 266),  # 266.4999
    (1923, 13, 2),  # 2.4999
    (4999, 1, 0),  # 0.4999
    (1, 4999, 0),  # 0.4999
    (5000, 1, 1),  # 0.5
    (1, 5000, 1),  # 0.5
    (2143, 7, 2),  # 1.5001
    (1997, 333, 67),  # 66.5001
    (1, 5001, 1),  # 0.5001
    (1, 10_000, 1),  # the whole amount
    (10**15, 9_999, 999_900_000_000_000),
    (10**15 - 1, 1, 100_000_000_000),  # 99999999999.9999
])
def test_fee_rounding_at_the_half_unit_with_odd_rates_is_exact(gross, rate_bps, fee):
    from marketplace.money import fee_of

    assert fee_of(gross, rate_bps) == fee
    assert isinstance(fee_of(gross, rate_bps), int)


@pytest.mark.parametrize("gross, rate_bps", [(-1, 500), (100, -1), (100, 10_001)])
def test_a_fee_needs_a_non_negative_amount_and_a_rate_within_100_percent(gross, rate_bps):
    from marketplace.money import fee_of

    with pytest.raises(ValueError):
        fee_of(gross, rate_bps)


def test_a_fee_at_the_edges_of_the_rate_range():
    from marketplace.money import fee_of

    assert fee_of(12345, 0) == 0
    assert fee_of(12345, 10_000) == 12345


def test_amounts_at_the_edges_are_taken_exactly():
    # Defaults: English reading, the commons' currencies.
    assert parse_amount("1,234.50", "usd") == Money(123450, "USD")
    assert parse_amount("0.50", "USD") == Money(50, "USD")  # under one major unit, above zero
    assert parse_amount("0.01", "USD") == Money(1, "USD")
    assert parse_amount("10000000000000.00", "USD") == Money(10**15, "USD")  # exactly the largest
    assert parse_amount("0" * 36 + "1.00", "USD") == Money(100, "USD")  # 40 characters is still typed text


@pytest.mark.parametrize("text, currency, message", [
    ("10000000000000.01", "USD", "This amount is too large."),
    ("0" * 37 + "1.00", "USD", "Type an amount."),  # 41 characters
    ("1,23.45", "USD", "'1,23.45' is not an amount."),  # grouping in the wrong place: read strictly
    ("5", "", "? is not a currency the commons accepts (USD, EUR, GBP, KES, INR, JPY)."),
    ("5", None, "? is not a currency the commons accepts (USD, EUR, GBP, KES, INR, JPY)."),
])
def test_amounts_just_past_the_edges_are_refused_with_the_exact_message(text, currency, message):
    with pytest.raises(MoneyError) as excinfo:
        parse_amount(text, currency)
    assert str(excinfo.value) == message


@pytest.mark.parametrize("code", ["US1", "USDX", "US", "usd"])
def test_money_needs_three_upper_case_letters(code):
    with pytest.raises(ValueError, match=f"^{code!r} is not an ISO 4217 code$"):
        Money(5, code)


def test_money_refusals_say_why():
    with pytest.raises(TypeError, match="^amounts are integers in minor units$"):
        Money(True, "USD")
    with pytest.raises(ValueError, match="^ISK amount 550 from Stripe is not a multiple of 100$"):
        from_stripe_amount(550, "isk")


def test_a_bad_fee_request_says_what_a_fee_needs():
    from marketplace.money import fee_of

    with pytest.raises(ValueError, match="^a fee needs a non-negative amount and a rate from 0 to 10000 basis points$"):
        fee_of(-1, 500)


def test_stripes_minimum_charge_is_its_table_in_minor_units_or_none():
    from marketplace.money import stripe_minimum

    assert stripe_minimum("usd") == Money(50, "USD")
    assert stripe_minimum("JPY") == Money(50, "JPY")
    assert stripe_minimum("HUF") == Money(17500, "HUF")
    assert stripe_minimum("KES") is None  # not in Stripe's table: Stripe decides


def test_the_decimal_of_an_amount_follows_its_currency_exponent():
    from decimal import Decimal

    assert Money(123450, "USD").decimal == Decimal("1234.50")
    assert Money(2000, "JPY").decimal == Decimal(2000)
    assert Money(18600, "KWD").decimal == Decimal("18.600")
