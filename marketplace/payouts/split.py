"""Splitting a payout's net among recipients, exactly (largest remainder)."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction


def largest_remainder(total_minor: int, weights: list[int]) -> list[int]:
    """Shares of ``total_minor`` (minor units) in proportion to ``weights`` that add up to it exactly.

    Each share is first rounded down; the units left over go one each to
    the shares with the largest fractional parts, the earlier share first on
    a tie (Hamilton's method). 901 split 1:1:1 is [301, 300, 300]; split
    70:30 it is [631, 270]. Raises ``ValueError`` for no weights, a weight
    that is not a positive integer, or a negative total.
    """
    if not weights or any(not isinstance(w, int) or w <= 0 for w in weights) or total_minor < 0:
        raise ValueError("a split needs a non-negative total and positive integer weights")
    whole = sum(weights)
    exact = [Fraction(total_minor * w, whole) for w in weights]
    shares = [int(x) for x in exact]  # floor: every x is non-negative
    left = total_minor - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


PLAIN_DECIMAL = re.compile(r"[0-9]{1,3}(?:[.,][0-9]+)?")


def parse_percentages(texts: list[str]) -> list[int]:
    """Percentages as typed ("70", "33.33", "33,33", "50 %") → integer weights in hundredths of a percent.

    Raises ``ValueError`` with a message for the person unless each is a
    number above 0 with at most two decimals and they sum to exactly 100.
    """
    weights = []
    for text in texts:
        # Plain decimals only: Decimal() alone would take "1e2", "NaN" or "+5".
        plain = PLAIN_DECIMAL.fullmatch(text.strip().rstrip("%").strip()) if isinstance(text, str) else None
        if plain is None:
            raise ValueError(f"{text!r} is not a percentage")
        try:
            value = Decimal(plain.group(0).replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a percentage") from None
        if value <= 0 or value > 100 or value != value.quantize(Decimal("0.01")):
            raise ValueError(f"{text!r}: a percentage above 0 and at most 100, with at most two decimals")
        weights.append(int(value * 100))
    if sum(weights) != 10_000:
        raise ValueError("the percentages must add up to 100")
    return weights
