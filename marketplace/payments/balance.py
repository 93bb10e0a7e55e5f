"""Reading the money that moved from Stripe's balance transactions (pure, no I/O).

A balance transaction (Stripe docs: "Balance transactions", object
``balance_transaction``) has ``amount`` (what moved, negative when money left
the platform balance), ``fee`` (what Stripe charged on it, positive) and
``net`` = ``amount`` − ``fee``, all in minor units of ``currency``. A
dispute's ``balance_transactions`` list the funds withdrawn (and, when won,
reinstated) with the dispute fee. The commons records what moved: the sum of
``net``, each balance transaction counted once by its id, never the
dispute's headline ``amount``.
"""
from __future__ import annotations

from dataclasses import dataclass

from marketplace.money import from_stripe_amount


@dataclass(frozen=True)
class Movement:
    """One balance transaction, as the commons books it (minor units of ``currency``).

    ``taken_minor``: the pledge money that left (−``amount``; negative when it
    came back); ``fee_minor``: Stripe's fee on it (``fee``). Their sum is the
    loss (−``net``).
    """

    id: str
    currency: str
    taken_minor: int
    fee_minor: int

    @property
    def loss_minor(self) -> int:
        """−``net``: what this balance transaction cost the platform balance."""
        return self.taken_minor + self.fee_minor


class BalanceError(ValueError):
    """A balance transaction that does not add up (``net`` ≠ ``amount`` − ``fee``) or names no id."""


def movements(balance_transactions) -> list[Movement]:
    """The balance transactions of a Stripe object (a dispute's
    ``balance_transactions``), each once by id, in the order given.

    Ids alone (not expanded) are skipped: nothing is known of their money.
    Raises :class:`BalanceError` for one whose ``net`` is not ``amount`` −
    ``fee`` or that lacks an id, amount or currency.
    """
    seen: set[str] = set()
    out: list[Movement] = []
    for txn in balance_transactions or []:
        if not isinstance(txn, dict):
            continue
        txn_id, amount, fee, net = txn.get("id"), txn.get("amount"), txn.get("fee", 0), txn.get("net")
        if not isinstance(txn_id, str) or not isinstance(amount, int) or not isinstance(fee, int) \
                or not isinstance(txn.get("currency"), str):
            raise BalanceError(f"balance transaction {txn_id!r} lacks an id, amount, fee or currency")
        if net is not None and net != amount - fee:
            raise BalanceError(f"balance transaction {txn_id}: net {net} is not amount {amount} - fee {fee}")
        if txn_id in seen:
            continue
        seen.add(txn_id)
        currency = txn["currency"]
        out.append(Movement(txn_id, currency.upper(), -from_stripe_amount(amount, currency).amount_minor,
                            from_stripe_amount(fee, currency).amount_minor))
    return out
