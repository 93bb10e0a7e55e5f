"""The stored ledger summary (:class:`~marketplace.ledger.models.LedgerSummary`):
what ``/transparency`` and ``/api/v1/ledger`` show, read from one row so that
an anonymous request never sums or checks the whole ledger (issue 15).

- Balances are kept current incrementally: :func:`marketplace.ledger.service.post`
  notes each transaction it creates, and just before the session commits
  :func:`_apply_posted` adds that transaction's entries (read back by
  transaction id, so entries a savepoint rolled back are not counted) to the
  row under its lock. The lock is taken last, just before COMMIT, so a money
  transaction never waits for another lock while holding it (no deadlock),
  and money events serialise on it only for that instant.
- :func:`refresh` recomputes the balances from every entry and runs the full
  check (:func:`marketplace.ledger.check.check`): the hourly
  ``ledger-reconciliation`` cron and ``flask ledger check`` call it.
  It locks the row first, so a money event committing meanwhile adds its
  entries after the recomputation, never twice nor not at all.

Other code (the commons report) reads :func:`read`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from marketplace.extensions import db
from marketplace.ledger.check import Violation, check
from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerSummary
from marketplace.timeutil import utcnow

SUMMARY_ID = 1
_POSTED = "backlog_commons_ledger_posted"
# How each account kind shows in the public totals (several kinds share one figure).
FIGURE_OF = {AccountKind.funder_payments: "received", AccountKind.item_escrow: "held",
             AccountKind.refunds: "refunded", AccountKind.platform_fees: "fees",
             AccountKind.payouts_paid: "paid", AccountKind.contributor_payable: "owed",
             AccountKind.disputes: "lost", AccountKind.commons_funds: "commons",
             AccountKind.contributor_receivable: "advanced",
             AccountKind.stripe_fees: "lost",  # a dispute's fee is part of what the dispute cost
             # Matching pools: sponsors' money in, what the pools hold, what went back to sponsors.
             AccountKind.sponsor_payments: "pools_received", AccountKind.matching_pool: "pools_held",
             AccountKind.sponsor_returns: "pools_returned",
             # Project funds: subscribers' money in, what the funds hold unallotted, what went
             # back to subscribers (a project that left), what the fiscal host kept then.
             AccountKind.subscriber_payments: "funds_received", AccountKind.project_fund: "funds_held",
             AccountKind.subscriber_returns: "funds_returned", AccountKind.fund_kept: "funds_kept"}
# Sources are negative in the ledger; shown as positive amounts.
NEGATIVE_KINDS = (AccountKind.funder_payments, AccountKind.contributor_receivable, AccountKind.sponsor_payments,
                  AccountKind.subscriber_payments)


@dataclass(frozen=True)
class SummaryView:
    """What the public sees: ``totals`` per currency (figure name → minor
    units, see :func:`figures`), as of ``totals_at`` (naive UTC); the last
    full check's ``violations`` (count) and ``rules``, run at ``checked_at``
    (None: never run, and then ``reconciled`` is False)."""

    totals: dict[str, dict[str, int]]
    totals_at: datetime
    checked_at: datetime | None
    violations: int
    rules: list[str]

    @property
    def reconciled(self) -> bool:
        """True when the last full check ran and found nothing."""
        return self.checked_at is not None and self.violations == 0


def figures(balances: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Public totals per currency from balances by account kind then currency:
    received, held, refunded, fees, paid, owed, lost, commons, advanced,
    pools_received, pools_held, pools_returned, funds_received, funds_held, funds_returned, funds_kept
    (minor units, positive where money arrived)."""
    out: dict[str, dict[str, int]] = {}
    names = list(dict.fromkeys(FIGURE_OF.values()))
    for kind_name, by_currency in balances.items():
        kind = AccountKind(kind_name)
        for currency, value in by_currency.items():
            row = out.setdefault(currency, dict.fromkeys(names, 0))
            row[FIGURE_OF[kind]] += -value if kind in NEGATIVE_KINDS else value
    return dict(sorted(out.items()))


def balances_from_entries() -> dict[str, dict[str, int]]:
    """Every entry summed by account kind and currency (a whole-ledger pass: for the cron and the CLI)."""
    rows = db.session.execute(
        select(LedgerAccount.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .group_by(LedgerAccount.kind, LedgerEntry.currency)
    ).all()
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, currency, total in rows:
        out[kind.value][currency] = int(total or 0)
    return dict(out)


def read() -> SummaryView | None:
    """The stored summary (one primary-key read), or None before the first
    :func:`refresh` on a database created without the migration's row."""
    row = db.session.get(LedgerSummary, SUMMARY_ID)
    if row is None:
        return None
    return SummaryView(figures(row.balances or {}), row.balances_at, row.checked_at, row.violations,
                       list(row.violation_rules or []))


def _locked_row() -> LedgerSummary:
    row = db.session.get(LedgerSummary, SUMMARY_ID, with_for_update=True, populate_existing=True)
    if row is None:
        row = LedgerSummary(id=SUMMARY_ID, balances={}, violation_rules=[])
        db.session.add(row)
    return row


def refresh() -> list[Violation]:
    """Recompute the balances from every entry and run the full check; store
    both with the time. Returns the violations. Flushes; the caller commits."""
    row = _locked_row()
    violations = check()
    row.balances = balances_from_entries()
    # What this transaction posted so far is in that sum: not to be added again at commit.
    db.session.info.pop(_POSTED, None)
    now = utcnow()
    row.balances_at = row.checked_at = now
    row.violations = len(violations)
    row.violation_rules = sorted({v.rule for v in violations})[:20]
    db.session.flush()
    return violations


def note_posted(transaction_id: int) -> None:
    """Count transaction ``transaction_id`` into the balances when the session
    commits (called by :func:`marketplace.ledger.service.post`)."""
    db.session.info.setdefault(_POSTED, []).append(transaction_id)


def _apply_posted(session: Session, transaction_ids: list[int]) -> None:
    rows = session.execute(
        select(LedgerAccount.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id.in_(transaction_ids))
        .group_by(LedgerAccount.kind, LedgerEntry.currency)
    ).all()
    if not rows:
        return  # every one was rolled back with its savepoint
    row = session.get(LedgerSummary, SUMMARY_ID, with_for_update=True, populate_existing=True)
    if row is None:
        return  # no summary yet: the first refresh computes it from the entries
    balances = {kind: dict(by_currency) for kind, by_currency in (row.balances or {}).items()}
    for kind, currency, total in rows:
        by_currency = balances.setdefault(kind.value, {})
        by_currency[currency] = by_currency.get(currency, 0) + int(total or 0)
    row.balances = balances
    row.balances_at = utcnow()
    session.flush()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    posted = session.info.pop(_POSTED, None)
    if posted:
        _apply_posted(session, posted)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_POSTED, None)
