"""The only module that writes ledger entries. Services flush, never commit."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from marketplace.backlog.models import ItemFunding
from marketplace.extensions import db
from marketplace.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from marketplace.ledger.summary import note_posted
from marketplace.money import Money


class UnbalancedTransaction(ValueError):
    """The entries of a transaction do not sum to zero in some currency."""


@dataclass(frozen=True)
class Line:
    """One entry to post: ``money.amount_minor`` > 0 reaches ``account``, < 0 leaves it."""

    account: LedgerAccount
    money: Money


def account(kind: AccountKind, *, item_id: int | None = None, user_id: int | None = None,
            pool_id: int | None = None, fund_id: int | None = None) -> LedgerAccount:
    """The account of ``kind`` (per item, per recipient, per matching pool or per project fund where it
    applies), created once.

    Race-safe: two sessions creating it at once end with one row.
    """
    code = (kind.value + (f":item:{item_id}" if item_id else "") + (f":user:{user_id}" if user_id else "")
            + (f":pool:{pool_id}" if pool_id else "") + (f":fund:{fund_id}" if fund_id else ""))
    row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = LedgerAccount(code=code, kind=kind, item_id=item_id, user_id=user_id, pool_id=pool_id,
                                fund_id=fund_id)
            db.session.add(row)
    except IntegrityError:
        row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    return row


def post(kind: str, idempotency_key: str, lines: list[Line], memo: str | None = None,
         reference: tuple[str, int] | None = None) -> tuple[LedgerTransaction, bool]:
    """Record one money event; returns (transaction, created).

    ``memo`` is text for people; ``reference`` a (kind, row id) pair that a
    later lookup finds the transaction by (:func:`referenced_total`).

    The same ``idempotency_key`` posted again (a retried job, a redelivered
    event, a second session racing the first) returns the existing
    transaction and posts nothing. Raises :class:`UnbalancedTransaction` when
    the lines do not sum to zero per currency, or hold a zero amount.
    """
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.money.amount_minor == 0:
            raise UnbalancedTransaction("a ledger line of zero")
        totals[line.money.currency] += line.money.amount_minor
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced or not lines:
        raise UnbalancedTransaction(f"entries do not sum to zero: {unbalanced or 'no entries'}")
    existing = db.session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key))
    if existing is not None:
        return existing, False
    try:
        with db.session.begin_nested():
            transaction = LedgerTransaction(kind=kind, idempotency_key=idempotency_key, memo=memo,
                                            reference_kind=reference[0] if reference else None,
                                            reference_id=reference[1] if reference else None)
            transaction.entries = [
                LedgerEntry(account=line.account, currency=line.money.currency, amount_minor=line.money.amount_minor)
                for line in lines
            ]
            db.session.add(transaction)
            db.session.flush()
            _project_escrow(lines)
    except IntegrityError:
        # Another session posted the same event first: it counts once.
        existing = db.session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return existing, False
    note_posted(transaction.id)
    return transaction, True


def posted(idempotency_key: str) -> bool:
    """Whether a transaction with this idempotency key was posted."""
    return db.session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == idempotency_key)) is not None


def funding_row(item_id: int, currency: str) -> ItemFunding:
    """The item's funding figures in ``currency``, locked for update, created at zero when missing."""
    funding = db.session.get(ItemFunding, (item_id, currency), with_for_update=True)
    if funding is None:
        funding = ItemFunding(item_id=item_id, currency=currency, held_minor=0, pending_minor=0)
        db.session.add(funding)
    return funding


def _project_escrow(lines: list[Line]) -> None:
    """Keep ``item_funding.held_minor`` (the bounty shown in lists) equal to the
    escrow balance; ``flask ledger check`` verifies it against the entries."""
    for line in lines:
        if line.account.kind is AccountKind.item_escrow:
            funding_row(line.account.item_id, line.money.currency).held_minor += line.money.amount_minor
    db.session.flush()


def balance(acct: LedgerAccount, currency: str) -> int:
    """Sum of the account's entries in ``currency``: the money it holds, from the entries alone."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.account_id == acct.id, LedgerEntry.currency == currency)
    ))


def referenced_total(reference: tuple[str, int], account_kind: AccountKind) -> int:
    """The sum (minor units, any currency the caller knows is single) of the
    entries on accounts of ``account_kind`` in transactions posted with
    ``reference`` (a (kind, row id) pair given to :func:`post`)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.reference_kind == reference[0], LedgerTransaction.reference_id == reference[1],
               LedgerAccount.kind == account_kind))
    return int(total or 0)
