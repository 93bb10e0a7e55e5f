"""Funder statements: what a set of pledges (a person's, an organisation's, a
grant's) did in a period, per currency, each figure traceable to the ledger
transactions behind it. Pure computation over rows the queries load; nothing
is written.

Amounts are integers in minor units of one currency; currencies are never
added together.

For each currency::

    opening + received − paid_out − (refunded + lost − covered_by_commons) = held_at_close

``paid_out`` is what payouts released of these pledges (their
``payout_pledge.amount_minor``), split into ``fees`` and ``to_recipients`` in
proportion to the payout's fee and shares (largest remainder, so each payout
line adds up exactly). ``covered_by_commons`` is what was refunded or lost
after the money had been paid out (the commons' funds paid it, not escrow).
``matched`` (what matching pools added beside these pledges) is the pools'
money: shown, never part of the balance.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from marketplace.ledger.models import AccountKind, LedgerTransaction
from marketplace.payouts.models import Payout
from marketplace.payouts.split import largest_remainder
from marketplace.pledges.models import Pledge

FIGURES = ("opening", "received", "matched", "paid_out", "fees", "to_recipients", "refunded", "lost",
           "covered_by_commons", "held_at_close")


@dataclass
class RecipientPart:
    """One recipient's part of a payout line (minor units)."""

    recipient_id: int
    name: str
    country: str | None
    certified: bool
    amount_minor: int


@dataclass
class PayoutLine:
    """The part of one payout that these pledges paid (negative when the payout was returned)."""

    transaction_id: int
    at: datetime
    payout_id: int
    returned: bool
    currency: str
    project: str
    item_id: int
    item_title: str
    pull_request_url: str | None
    amount_minor: int
    fee_minor: int
    recipients: list[RecipientPart]


@dataclass
class MoneyLine:
    """Money of one pledge received, refunded, lost or matched in one transaction."""

    transaction_id: int
    at: datetime
    kind: str  # received | refunded | lost | matched
    pledge_id: int
    item_id: int
    currency: str
    amount_minor: int
    from_escrow: bool = True  # False: refunded or lost after payout (the commons paid)


@dataclass
class CurrencyStatement:
    """One currency's figures (minor units) and the lines behind them."""

    currency: str
    figures: dict[str, int] = field(default_factory=dict)
    money_lines: list[MoneyLine] = field(default_factory=list)
    payout_lines: list[PayoutLine] = field(default_factory=list)
    by_project: dict[str, int] = field(default_factory=dict)
    by_item: dict[int, int] = field(default_factory=dict)
    by_country: dict[str, int] = field(default_factory=dict)  # "" for a recipient without a country

    @property
    def reconciles(self) -> bool:
        """The balance identity holds (``held_at_close`` comes from the escrow entries alone)."""
        f = self.figures
        return (f["opening"] + f["received"] - f["paid_out"] - (f["refunded"] + f["lost"] - f["covered_by_commons"])
                == f["held_at_close"])


@dataclass
class Statement:
    """A statement of ``pledges`` for ``start`` ≤ time < ``end`` (UTC)."""

    title: str
    start: datetime
    end: datetime
    pledge_ids: list[int]
    currencies: dict[str, CurrencyStatement]
    transaction_ids: list[int]  # every transaction behind the statement (also before the period: the opening)


@dataclass(frozen=True)
class Context:
    """What the computation needs beyond the transactions: payouts, matches,
    recipients' names, countries and certification (loaded by the caller)."""

    payouts: dict[int, Payout]
    recipient_country: dict[int, str | None]
    certified: dict[tuple[int, int], bool]  # (payout id, recipient id) → certified when it executed


def _sum(txn: LedgerTransaction, *kinds: AccountKind) -> int:
    return sum(e.amount_minor for e in txn.entries if e.account.kind in kinds)


def _currency(txn: LedgerTransaction) -> str:
    return txn.entries[0].currency


def payout_id_of(txn: LedgerTransaction) -> int:
    """The payout id in a ``payout:{id}:released|returned`` key."""
    return int(txn.idempotency_key.split(":")[1])


def build(title: str, pledges: list[Pledge], rows: list[tuple[str, int, LedgerTransaction]],
          start: datetime, end: datetime, context: Context) -> Statement:
    """The statement of ``pledges`` from ``rows`` (from
    :func:`marketplace.reports.queries.transactions_behind`): movements before
    ``start`` make the opening balance, those in [start, end) the lines;
    later ones are left out."""
    by_id = {p.id: p for p in pledges}
    currencies: dict[str, CurrencyStatement] = {}
    seen: set[int] = set()
    escrow_moved: dict[str, int] = defaultdict(int)  # in the period, from the escrow entries alone

    def of(currency: str) -> CurrencyStatement:
        if currency not in currencies:
            currencies[currency] = CurrencyStatement(currency, dict.fromkeys(FIGURES, 0))
        return currencies[currency]

    for link, row_id, txn in rows:
        if txn.created_at >= end:
            continue
        seen.add(txn.id)
        before = txn.created_at < start
        currency = _currency(txn)
        cs = of(currency)
        f = cs.figures
        if link == "match":
            if not before:
                amount = _sum(txn, AccountKind.item_escrow)
                f["matched"] += amount
                item_id = next(e.account.item_id for e in txn.entries if e.account.kind is AccountKind.item_escrow)
                cs.money_lines.append(MoneyLine(txn.id, txn.created_at, "matched", 0, item_id, currency, amount))
            continue
        if link == "payout_pledge":
            payout = context.payouts[payout_id_of(txn)]
            part = next(c.amount_minor for c in payout.covered if c.pledge_id == row_id)
            returned = txn.kind == "payout_returned"
            sign = -1 if returned else 1
            if before:
                f["opening"] -= sign * part
                continue
            line = _payout_line(txn, payout, part, returned, context)
            escrow_moved[currency] -= line.amount_minor
            f["paid_out"] += line.amount_minor
            f["fees"] += line.fee_minor
            f["to_recipients"] += line.amount_minor - line.fee_minor
            cs.by_project[line.project] = cs.by_project.get(line.project, 0) + line.amount_minor
            cs.by_item[line.item_id] = cs.by_item.get(line.item_id, 0) + line.amount_minor
            for r in line.recipients:
                cs.by_country[r.country or ""] = cs.by_country.get(r.country or "", 0) + r.amount_minor
            cs.payout_lines.append(line)
            continue
        pledge = by_id[row_id]
        escrow = _sum(txn, AccountKind.item_escrow)
        if before:
            f["opening"] += escrow
            continue
        escrow_moved[currency] += escrow
        if txn.kind in ("pledge_received",):
            f["received"] += escrow
            cs.money_lines.append(MoneyLine(txn.id, txn.created_at, "received", pledge.id, pledge.item_id,
                                            currency, escrow))
            continue
        refunded = _sum(txn, AccountKind.refunds)
        lost = _sum(txn, AccountKind.disputes)
        f["refunded"] += refunded
        f["lost"] += lost
        # Escrow gave (−escrow) what was refunded or lost; the rest came from the commons' funds.
        f["covered_by_commons"] += refunded + lost + escrow
        for kind, amount in (("refunded", refunded), ("lost", lost)):
            if amount:
                cs.money_lines.append(MoneyLine(txn.id, txn.created_at, kind, pledge.id, pledge.item_id, currency,
                                                amount, from_escrow=escrow != 0))
    for currency, cs in currencies.items():
        cs.figures["held_at_close"] = cs.figures["opening"] + escrow_moved[currency]
    return Statement(title, start, end, sorted(by_id), dict(sorted(currencies.items())), sorted(seen))


def _payout_line(txn: LedgerTransaction, payout: Payout, part: int, returned: bool, context: Context) -> PayoutLine:
    """This pledge's ``part`` of ``payout``, split over the fee and the shares in proportion."""
    shares = [s for s in payout.shares if s.amount_minor]
    weights = [payout.fee_minor] + [s.amount_minor for s in shares]
    if sum(weights) == 0:
        split = [0] * len(weights)
    else:
        split = largest_remainder(part, weights)
    sign = -1 if returned else 1
    item = payout.item
    return PayoutLine(
        transaction_id=txn.id, at=txn.created_at, payout_id=payout.id, returned=returned,
        currency=payout.currency, project=item.repository.project.name, item_id=item.id, item_title=item.title,
        pull_request_url=payout.pull_request.html_url if payout.pull_request else None,
        amount_minor=sign * part, fee_minor=sign * split[0],
        recipients=[RecipientPart(s.recipient_id, s.recipient.display_name,
                                  context.recipient_country.get(s.recipient_id),
                                  context.certified.get((payout.id, s.recipient_id), False), sign * amount)
                    for s, amount in zip(shares, split[1:])])


def totals_by(lines: list[PayoutLine], key) -> dict:
    """Sum of payout line amounts grouped by ``key(line)``."""
    out: dict = defaultdict(int)
    for line in lines:
        out[key(line)] += line.amount_minor
    return dict(out)
