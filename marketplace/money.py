"""Money values: integer amounts in a currency's minor unit, with the ISO 4217 code.

Exponents (digits of the minor unit) come from Babel/CLDR: USD 2, JPY 0,
KWD 3. Typed amounts are parsed for the reader's locale and refused, with a
message, when they are finer than the minor unit; nothing is rounded
silently. Stripe's amounts follow Stripe's "Supported currencies" rules:
minor units, zero-decimal currencies as whole units, three-decimal
currencies with a last digit of 0, ISK as a two-decimal amount.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.core import Locale
from babel.numbers import (
    NumberFormatError,
    format_decimal,
    get_currency_precision,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)
from flask_babel import gettext as _

from marketplace.errors import DomainError

_AMOUNT_CHARACTERS = re.compile(r"^-?[0-9][0-9\s.,'\u00a0\u202f\u2019]*$")
_SINGLE_MARK_THREE_DIGITS = re.compile(r"^-?[0-9]+[.,][0-9]{3}$")
DEFAULT_CURRENCIES = ("USD", "EUR", "GBP", "KES", "INR", "JPY")
MAX_MINOR = 10**15  # far above any pledge; keeps every sum inside a 64-bit integer

# Stripe: "Zero-decimal currencies" — amounts are whole units.
STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
# Stripe: "Three-decimal currencies" — the last digit must be 0.
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
# Stripe: ISK is zero-decimal in ISO 4217 but sent as a two-decimal amount (a multiple of 100).
STRIPE_TWO_DECIMAL_REPRESENTED = frozenset({"ISK"})


# Stripe: "Minimum and maximum charge amounts"
# (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts), the
# smallest amount Stripe charges, in minor units of the charge currency, for
# the currencies it lists. For a currency not listed, the minimum is that of
# the platform's settlement currency after conversion, which only Stripe
# knows: such amounts go to Stripe, and its ``amount_too_small`` refusal is
# shown to the funder.
STRIPE_MINIMUM_CHARGE = {
    "USD": 50, "AED": 200, "AUD": 50, "BGN": 100, "BRL": 50, "CAD": 50, "CHF": 50, "CZK": 1500, "DKK": 250,
    "EUR": 50, "GBP": 30, "HKD": 400, "HUF": 17500, "INR": 50, "JPY": 50, "MXN": 1000, "MYR": 200, "NOK": 300,
    "NZD": 50, "PLN": 200, "RON": 200, "SEK": 300, "SGD": 50, "THB": 1000,
}


def stripe_minimum(currency: str) -> "Money | None":
    """The smallest card charge Stripe takes in ``currency`` (its table), or None when it lists none."""
    minimum = STRIPE_MINIMUM_CHARGE.get(currency.upper())
    return Money(minimum, currency.upper()) if minimum is not None else None


class MoneyError(DomainError):
    """An amount that cannot be taken; the message is for the person who typed it."""


def exponent(currency: str) -> int:
    """Digits of ``currency``'s minor unit (ISO 4217, from CLDR through Babel)."""
    return get_currency_precision(currency.upper())


@dataclass(frozen=True)
class Money:
    """``amount_minor`` (an ``int``) of ``currency`` (ISO 4217, upper case)."""

    amount_minor: int
    currency: str

    def __post_init__(self):
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("amounts are integers in minor units")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"{self.currency!r} is not an ISO 4217 code")

    @property
    def decimal(self) -> Decimal:
        """The amount in major units, exactly (``Decimal``; for display only)."""
        return Decimal(self.amount_minor).scaleb(-exponent(self.currency))


def parse_amount(text: str, currency: str, locale: str | Locale = "en",
                 allowed: tuple[str, ...] = DEFAULT_CURRENCIES) -> Money:
    """Read a typed amount such as ``"1,234.50"`` (en) or ``"1.234,50"`` (de).

    Raises :class:`MoneyError` for a currency that is not allowed, text that
    is not a number, zero or negative amounts, precision finer than the minor
    unit ("10.005" USD), amounts Stripe cannot take ("18.605" KWD: the last
    of three decimals must be 0), and amounts beyond 10^15 minor units.
    """
    currency = (currency or "").strip().upper()
    if currency not in allowed:
        raise MoneyError(_("%(currency)s is not a currency the commons accepts (%(allowed)s).",
                           currency=currency or "?", allowed=", ".join(allowed)))
    text = (text or "").strip()
    if not text or len(text) > 40:
        raise MoneyError(_("Type an amount."))
    if not _AMOUNT_CHARACTERS.match(text):
        # Babel would read "1e3" and "NaN"; people do not type those as money.
        raise MoneyError(_("%(text)s is not an amount.", text=repr(text)))
    value = _read_number(text, Locale.parse(locale) if isinstance(locale, str) else locale)
    if not value.is_finite() or value <= 0:
        raise MoneyError(_("The amount must be more than zero."))
    digits = exponent(currency)
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise MoneyError(_("%(currency)s amounts have at most %(digits)d decimal places; %(text)s has more.",
                           currency=currency, digits=digits, text=repr(text)))
    amount = int(minor)
    if amount > MAX_MINOR:
        raise MoneyError(_("This amount is too large."))
    stripe_amount(Money(amount, currency))  # refuse what the card rail cannot take
    return Money(amount, currency)


def _read_number(text: str, locale: Locale) -> Decimal:
    """``text`` read strictly the way ``locale`` writes numbers.

    Spaces of any kind group digits where the locale groups with a space (fr:
    ``1 234,50``). Where the decimal mark is a comma (fr, es, pt), one mark
    followed by exactly three digits and nothing else (``1.234``, ``1,234``)
    is refused as ambiguous: people there read both 1234 and 1.234 into it.
    Text written another locale's way (``1,234.50`` in pt) is refused with
    the amount written this locale's way."""
    group, decimal_mark = get_group_symbol(locale), get_decimal_symbol(locale)
    if group.isspace():
        text = re.sub(r"[ \u00a0\u202f]", group, text)
    if decimal_mark == "," and _SINGLE_MARK_THREE_DIGITS.match(text):
        whole, _mark, fraction = re.split(r"([.,])", text)
        as_thousands, as_fraction = Decimal(whole + fraction), Decimal(f"{whole}.{fraction}")
        raise MoneyError(_("%(text)s can be read two ways here. Type %(thousands)s for the whole "
                           "number, or %(fraction)s for a fraction.", text=repr(text),
                           thousands=format_decimal(as_thousands, "#,##0.00", locale=locale),
                           fraction=format_decimal(as_fraction, "#,##0.000", locale=locale)))
    try:
        return parse_decimal(text, locale=locale, strict=True)
    except (NumberFormatError, InvalidOperation, ValueError):
        pass
    for other in ("en", "pt"):  # 1,234.50 and 1.234,50, the two common ways
        try:
            value = parse_decimal(text, locale=other, strict=True)
        except (NumberFormatError, InvalidOperation, ValueError):
            continue
        if locale.language != other:
            raise MoneyError(_("%(text)s is not written the way amounts are written here; type %(example)s.",
                               text=repr(text), example=format_decimal(value, "#,##0.00###", locale=locale)))
    raise MoneyError(_("%(text)s is not an amount.", text=repr(text)))


def stripe_amount(money: Money) -> int:
    """The ``amount`` to send to Stripe for ``money``.

    Raises :class:`MoneyError` when Stripe cannot charge it (a three-decimal
    amount whose last digit is not 0).
    """
    currency = money.currency
    if currency in STRIPE_TWO_DECIMAL_REPRESENTED:
        return money.amount_minor * 100
    if currency in STRIPE_THREE_DECIMAL and money.amount_minor % 10:
        raise MoneyError(_("%(currency)s card payments take amounts whose last decimal is 0.", currency=currency))
    return money.amount_minor


def from_stripe_amount(amount: int, currency: str) -> Money:
    """The :class:`Money` of an amount Stripe reports (``amount``, ``amount_refunded``…)."""
    currency = currency.upper()
    if currency in STRIPE_TWO_DECIMAL_REPRESENTED:
        if amount % 100:
            raise ValueError(f"{currency} amount {amount} from Stripe is not a multiple of 100")
        return Money(amount // 100, currency)
    return Money(amount, currency)


def fee_of(gross_minor: int, rate_bps: int) -> int:
    """The commons' fee on ``gross_minor`` at ``rate_bps`` basis points, in minor units.

    The rule: the exact product rounded to the nearest minor unit, a half
    rounding up (the commons' favour on a tie), so the fee is never more than
    half a unit from the exact product. 10% of USD 10.01 is 100 (100.1);
    5% of 33.33 is 167 (166.65); 5% of 0.10 is 1 (0.5).
    """
    if gross_minor < 0 or not 0 <= rate_bps <= 10_000:
        raise ValueError("a fee needs a non-negative amount and a rate from 0 to 10000 basis points")
    return (gross_minor * rate_bps + 5_000) // 10_000
