"""Quadratic funding, exactly, in integer minor units.

For one item, each funder's contribution ``c`` is the sum of their pledges
to it; the raw match is (Σ √c)² − Σ c, rounded down to a minor unit. A
pool smaller than the raw matches is divided in proportion to them, rounded
down with the remainder given by largest remainder; a per-item cap bounds
each item's share, no item ever gets more than its raw match, and what no
item can take is left over (it goes back to the sponsor).

Scenario of issue 16 (pool 1,000.00 USD = 100000): item A one funder ×
100.00, item B four × 25.00, item C one hundred × 1.00 → raw A 0, B 30000,
C 990000; divided A 0, B 2941, C 97059; with a 50% cap A 0, B 30000,
C 50000 and 20000 left over.
"""
from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

from marketplace.payouts.split import largest_remainder

# Far more digits than any sum of square roots of 64-bit amounts needs: the
# error of (Σ √c)² computed so is below 1e-40, and the floor adds 1e-30 so
# that an exact integer computed a hair below itself (√2 + √8 = √18) is not
# rounded down a unit.
_PRECISION = 80
_NUDGE = Decimal("1e-30")


def raw_match(contributions: list[int]) -> int:
    """(Σ √c)² − Σ c for the contributions ``c`` (minor units, each > 0) of
    distinct funders to one item, rounded down: ``[2500] * 4`` → 30000,
    ``[10000]`` → 0, ``[]`` → 0. Raises ``ValueError`` for a contribution ≤ 0."""
    if any(c <= 0 for c in contributions):
        raise ValueError("contributions must be positive")
    if len(contributions) < 2:
        return 0
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        root_sum = sum((Decimal(c).sqrt() for c in contributions), Decimal(0))
        square = (root_sum * root_sum + _NUDGE).to_integral_value(rounding=ROUND_FLOOR)
    return int(square) - sum(contributions)


def distribute(raw: dict[int, int], pool_minor: int, cap_minor: int | None = None) -> tuple[dict[int, int], int]:
    """Divide ``pool_minor`` among items by their raw matches ``raw`` (item id →
    minor units); returns (item id → share, left over).

    Each item's limit is its raw match, and ``cap_minor`` when given. When the
    limits fit in the pool, each item gets its limit. Otherwise the pool is
    shared in proportion to the raw matches; an item whose proportional share
    passes its limit is fixed at the limit and the rest shared again among the
    others (exact fractions), the last shares rounded down with the remainder
    by largest remainder (:func:`marketplace.payouts.split.largest_remainder`,
    earlier item id first on a tie). Shares add up to at most ``pool_minor``.
    """
    limits = {item: min(amount, cap_minor) if cap_minor is not None else amount
              for item, amount in raw.items() if amount > 0}
    shares = {item: 0 for item in raw}
    if sum(limits.values()) <= pool_minor:
        shares.update(limits)
        return shares, pool_minor - sum(limits.values())
    open_items = sorted(limits)
    left = pool_minor
    while open_items:
        weight = sum(raw[item] for item in open_items)
        capped = [item for item in open_items if Fraction(left * raw[item], weight) >= limits[item]]
        if not capped:
            break
        for item in capped:
            shares[item] = limits[item]
            left -= limits[item]
        open_items = [item for item in open_items if item not in capped]
    if open_items:
        for item, share in zip(open_items, largest_remainder(left, [raw[item] for item in open_items])):
            shares[item] = share
        left = 0
    return shares, left
