"""Double-entry ledger: accounts, transactions and their entries.

Every money event is one :class:`LedgerTransaction` whose entries sum to zero
per currency. Accounts are the places money can be, and a transaction moves
money between them: the account it leaves gets a negative entry, the one it
reaches a positive entry. So ``funder_payments`` goes negative by what funders
paid in, and escrow, fees, payable, refunds and disputes hold positive
balances; received = held + fees + payable + paid + refunded + lost, per
currency, follows from the entries alone. The only writer is
:mod:`marketplace.ledger.service`.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class AccountKind(str, enum.Enum):
    """A place money can be."""

    funder_payments = "funder_payments"  # where funders' money comes from (negative: what they paid)
    item_escrow = "item_escrow"  # one per item: held pledges, its bounty
    platform_fees = "platform_fees"  # the commons' fees
    contributor_payable = "contributor_payable"  # one per recipient: owed, not yet paid
    payouts_paid = "payouts_paid"  # paid out to contributors
    refunds = "refunds"  # sent back to funders
    disputes = "disputes"  # lost to chargebacks
    # The commons' own money outside escrow: negative where it covered a loss
    # after payout (a chargeback), positive where a reversed transfer brought money back.
    commons_funds = "commons_funds"
    # One per recipient: negative by what the commons advanced on a refund
    # after payout and is owed back by the recipient.
    contributor_receivable = "contributor_receivable"
    # What Stripe charged the commons beyond the pledges' own money (a dispute's
    # fee), from the ``fee`` of Stripe's balance transactions.
    stripe_fees = "stripe_fees"
    # Matching pools (marketplace.pools), each account per pool: where a
    # sponsor's budget comes from (negative: what they paid in), the pool's
    # unspent budget, and what went back to the sponsor.
    sponsor_payments = "sponsor_payments"
    matching_pool = "matching_pool"
    sponsor_returns = "sponsor_returns"
    # Project funds (marketplace.funds), each account per fund: where its
    # subscribers' money comes from (negative: what they paid in), what the
    # fund holds unallotted, what went back to subscribers when the project
    # left the commons, and what the fiscal host kept then (the terms).
    subscriber_payments = "subscriber_payments"
    project_fund = "project_fund"
    subscriber_returns = "subscriber_returns"
    fund_kept = "fund_kept"
    # Per fund: what Stripe took back of subscribers' paid invoices (a refund
    # made at Stripe, a lost chargeback), from the fund while it held it, the
    # rest covered by the commons (``commons_funds``) when it was allotted already.
    subscriber_refunds = "subscriber_refunds"


class LedgerAccount(db.Model):
    """One account; ``code`` names it uniquely (e.g. ``item_escrow:42``)."""

    __tablename__ = "ledger_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[AccountKind] = mapped_column(db.Enum(AccountKind, native_enum=False, length=30))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("matching_pool.id", ondelete="RESTRICT"), index=True)
    fund_id: Mapped[int | None] = mapped_column(ForeignKey("project_fund.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransaction(db.Model):
    """One money event. ``idempotency_key`` (from our own row ids or the
    provider's event id) makes posting it twice a no-op."""

    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    memo: Mapped[str | None] = mapped_column(Text)  # for people; never looked up
    # What a later lookup finds this transaction by: a kind of reference and the
    # id of the row it names, e.g. ("own_reversal", <payout share id>).
    reference_kind: Mapped[str | None] = mapped_column(String(40))
    reference_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (Index("ix_ledger_transaction_reference", "reference_kind", "reference_id"),)

    entries: Mapped[list["LedgerEntry"]] = relationship(
        back_populates="transaction", cascade="all, delete-orphan", order_by="LedgerEntry.id"
    )


class LedgerEntry(db.Model):
    """Money reaching (positive) or leaving (negative) one account, in minor units of one currency."""

    __tablename__ = "ledger_entry"
    __table_args__ = (Index("ix_ledger_entry_account_currency", "account_id", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id", ondelete="RESTRICT"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_account.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship()


class LedgerSummary(db.Model):
    """The one stored summary of the ledger (``id`` 1) that public pages read
    instead of the entries (issue 15): the balance of every account kind per
    currency, kept current by each money event's commit
    (:mod:`marketplace.ledger.summary`), and the result of the last full
    reconciliation (``flask ledger check`` or the hourly cron), with when it ran."""

    __tablename__ = "ledger_summary"

    id: Mapped[int] = mapped_column(primary_key=True)
    # {"item_escrow": {"USD": 12500}, …}: sums of entries in minor units, by account kind then currency.
    balances: Mapped[dict] = mapped_column(db.JSON, default=dict)
    balances_at: Mapped[datetime] = mapped_column(default=utcnow)  # when balances last changed or were recomputed
    checked_at: Mapped[datetime | None] = mapped_column()  # when the full check last ran; None: never
    violations: Mapped[int] = mapped_column(default=0)  # what that check found
    violation_rules: Mapped[list] = mapped_column(db.JSON, default=list)  # the rules it found broken, distinct
