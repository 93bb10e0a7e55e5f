"""Double-entry ledger: accounts, transactions and their entries.

Every money event is one :class:`LedgerTransaction` whose entries sum to zero
per currency. An entry's ``amount_minor`` is signed: positive is a debit,
negative a credit. Balances are derived from the entries alone; the only
writer is :mod:`marketplace.ledger.service`.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class AccountKind(str, enum.Enum):
    """What an account holds. Liabilities and revenue have credit (negative) balances."""

    funder_payments = "funder_payments"  # asset: money received from funders, at the processor or bank
    item_escrow = "item_escrow"  # liability, one per item: held pledges
    platform_fees = "platform_fees"  # revenue of the commons
    contributor_payable = "contributor_payable"  # liability, one per recipient: owed, not yet paid
    refunds = "refunds"  # money sent back to funders
    disputes = "disputes"  # losses from chargebacks


class LedgerAccount(db.Model):
    """One account; ``code`` names it uniquely (e.g. ``item_escrow:42``)."""

    __tablename__ = "ledger_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[AccountKind] = mapped_column(db.Enum(AccountKind, native_enum=False, length=30))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransaction(db.Model):
    """One money event. ``idempotency_key`` (from our own row ids or the
    provider's event id) makes posting it twice a no-op."""

    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    entries: Mapped[list["LedgerEntry"]] = relationship(
        back_populates="transaction", cascade="all, delete-orphan", order_by="LedgerEntry.id"
    )


class LedgerEntry(db.Model):
    """A debit (positive) or credit (negative) of one account, in minor units of one currency."""

    __tablename__ = "ledger_entry"
    __table_args__ = (Index("ix_ledger_entry_account_currency", "account_id", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id", ondelete="RESTRICT"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_account.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship()
