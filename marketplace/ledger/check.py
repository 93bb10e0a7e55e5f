"""Ledger invariants, checked in SQL in one pass (``flask ledger check``).

1. Every transaction sums to zero in each currency.
2. No item's escrow is negative (more paid out or refunded than received).
3. Each item's cached bounty (``item_funding.held_minor``) equals its escrow
   balance derived from the entries.
4. Each item's escrow equals what its pledges still hold (amount − refunded
   of held, partially refunded and disputed pledges).
5. Per currency, what funders paid in equals what the pledges received, and
   what was refunded or lost equals what the pledges record as refunded. With
   1 and 4, money rule 4 (paid + refunded + held + fee = received) follows.
6. Every entry uses an ISO currency code of three upper-case letters.
7. No recipient is owed a negative amount (contributor payable).
8. Every executed payout's fee and shares add up to its gross, and the
   escrow it released equals that gross (money rule 5).
On SQLite (no FULL OUTER JOIN in older versions) rows missing on the left
side of 3 and 4 are checked one way only.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from marketplace.extensions import db

CHECK_SQL = """
WITH unbalanced AS (
    SELECT 'unbalanced transaction' AS rule, transaction_id::text AS subject, currency,
           SUM(amount_minor) AS amount
    FROM ledger_entry GROUP BY transaction_id, currency HAVING SUM(amount_minor) <> 0
),
escrow AS (
    SELECT a.item_id, e.currency, SUM(e.amount_minor) AS held
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    WHERE a.kind = 'item_escrow' GROUP BY a.item_id, e.currency
),
negative_escrow AS (
    SELECT 'negative escrow' AS rule, item_id::text AS subject, currency, held AS amount
    FROM escrow WHERE held < 0
),
projection AS (
    SELECT 'bounty differs from escrow' AS rule,
           COALESCE(f.item_id, x.item_id)::text AS subject,
           COALESCE(f.currency, x.currency) AS currency,
           COALESCE(f.held_minor, 0) - COALESCE(x.held, 0) AS amount
    FROM item_funding f FULL OUTER JOIN escrow x ON x.item_id = f.item_id AND x.currency = f.currency
    WHERE COALESCE(f.held_minor, 0) <> COALESCE(x.held, 0)
),
pledged AS (
    SELECT item_id, currency, SUM(amount_minor - refunded_minor) AS held
    FROM pledge WHERE state IN ('held', 'partially_refunded', 'disputed') GROUP BY item_id, currency
),
escrow_vs_pledges AS (
    SELECT 'escrow differs from held pledges' AS rule,
           COALESCE(x.item_id, p.item_id)::text AS subject,
           COALESCE(x.currency, p.currency) AS currency,
           COALESCE(x.held, 0) - COALESCE(p.held, 0) AS amount
    FROM escrow x FULL OUTER JOIN pledged p ON p.item_id = x.item_id AND p.currency = x.currency
    WHERE COALESCE(x.held, 0) <> COALESCE(p.held, 0)
),
received_vs_pledges AS (
    SELECT 'received differs from pledges received' AS rule, 'all pledges' AS subject, r.currency,
           r.received - COALESCE(p.received, 0) AS amount
    FROM (SELECT e.currency, -SUM(e.amount_minor) AS received FROM ledger_entry e
          JOIN ledger_account a ON a.id = e.account_id WHERE a.kind = 'funder_payments' GROUP BY e.currency) r
    LEFT JOIN (SELECT currency, SUM(amount_minor) AS received FROM pledge
               WHERE state IN ('held', 'partially_refunded', 'refunded', 'disputed', 'released')
               GROUP BY currency) p ON p.currency = r.currency
    WHERE r.received <> COALESCE(p.received, 0)
),
refunded_vs_pledges AS (
    SELECT 'refunds and losses differ from pledges refunded' AS rule, 'all pledges' AS subject, r.currency,
           r.refunded - COALESCE(p.refunded, 0) AS amount
    FROM (SELECT e.currency, SUM(e.amount_minor) AS refunded FROM ledger_entry e
          JOIN ledger_account a ON a.id = e.account_id WHERE a.kind IN ('refunds', 'disputes')
          GROUP BY e.currency) r
    LEFT JOIN (SELECT currency, SUM(refunded_minor) AS refunded FROM pledge GROUP BY currency) p
        ON p.currency = r.currency
    WHERE r.refunded <> COALESCE(p.refunded, 0)
),
negative_payable AS (
    SELECT 'negative contributor payable' AS rule, a.user_id::text AS subject, e.currency,
           SUM(e.amount_minor) AS amount
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    WHERE a.kind = 'contributor_payable' GROUP BY a.user_id, e.currency HAVING SUM(e.amount_minor) < 0
),
payout_split AS (
    SELECT 'payout fee and shares differ from its gross' AS rule, p.id::text AS subject, p.currency,
           p.gross_minor - p.fee_minor - COALESCE(SUM(s.amount_minor), 0) AS amount
    FROM payout p LEFT JOIN payout_share s ON s.payout_id = p.id
    WHERE p.state IN ('executing', 'paid', 'failed')
    GROUP BY p.id, p.currency, p.gross_minor, p.fee_minor
    HAVING p.gross_minor - p.fee_minor - COALESCE(SUM(s.amount_minor), 0) <> 0
),
payout_released AS (
    SELECT 'payout released differs from its gross' AS rule, p.id::text AS subject, p.currency,
           p.gross_minor + COALESCE(SUM(e.amount_minor), 0) AS amount
    FROM payout p
    LEFT JOIN ledger_transaction t ON t.idempotency_key = 'payout:' || p.id || ':' || 'released'
    LEFT JOIN ledger_entry e ON e.transaction_id = t.id
        AND e.account_id IN (SELECT id FROM ledger_account WHERE kind = 'item_escrow')
    WHERE p.state IN ('executing', 'paid', 'failed')
    GROUP BY p.id, p.currency, p.gross_minor
    HAVING p.gross_minor + COALESCE(SUM(e.amount_minor), 0) <> 0
),
bad_currency AS (
    SELECT 'bad currency code' AS rule, id::text AS subject, currency, amount_minor AS amount
    FROM ledger_entry WHERE currency !~ '^[A-Z]{3}$'
)
SELECT rule, subject, currency, amount FROM unbalanced
UNION ALL SELECT rule, subject, currency, amount FROM negative_escrow
UNION ALL SELECT rule, subject, currency, amount FROM projection
UNION ALL SELECT rule, subject, currency, amount FROM escrow_vs_pledges
UNION ALL SELECT rule, subject, currency, amount FROM received_vs_pledges
UNION ALL SELECT rule, subject, currency, amount FROM refunded_vs_pledges
UNION ALL SELECT rule, subject, currency, amount FROM negative_payable
UNION ALL SELECT rule, subject, currency, amount FROM payout_split
UNION ALL SELECT rule, subject, currency, amount FROM payout_released
UNION ALL SELECT rule, subject, currency, amount FROM bad_currency
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    currency: str
    amount: int

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject} {self.currency} {self.amount}"


def check() -> list[Violation]:
    """Every violated invariant (empty when the ledger is sound)."""
    sql = CHECK_SQL
    if db.engine.dialect.name == "sqlite":
        # SQLite has no ::text casts, no FULL OUTER JOIN before 3.39 and no regex operator.
        sql = (sql.replace("::text", "")
               .replace("FULL OUTER JOIN escrow x", "LEFT JOIN escrow x")
               .replace("FULL OUTER JOIN pledged p", "LEFT JOIN pledged p")
               .replace("currency !~ '^[A-Z]{3}$'", "NOT (length(currency) = 3 AND currency = upper(currency))"))
        sql = sql.replace("FROM bad_currency", "FROM bad_currency UNION ALL SELECT 'bounty differs from escrow', "
                          "x.item_id, x.currency, -x.held FROM escrow x LEFT JOIN item_funding f "
                          "ON f.item_id = x.item_id AND f.currency = x.currency "
                          "WHERE f.item_id IS NULL AND x.held <> 0")
    return [Violation(rule, str(subject), currency, int(amount))
            for rule, subject, currency, amount in db.session.execute(text(sql)).all()]
