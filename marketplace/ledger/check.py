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
9. Matching pools (issue 16): each pool's account is never negative; what
   its sponsor paid in (ledger) equals the budget it records as received,
   and equals matched (net of matches given back) + returned to the sponsor
   + held in the pool; what went back to the sponsor equals what the pool
   records; each pool's matches (rows) equal what their transactions
   (referenced by match id) moved into escrow. Held matches count in 4
   beside their pledges. Each card refund of a pool's budget (``pool_refund``)
   booked to the sponsor's returns exactly its amount once Stripe made it,
   and nothing (never booked, or booked and given back) when it is still
   waiting for Stripe or failed.
10. Project funds (issue 18): each fund's account is never negative; what
   its subscribers paid in (ledger) equals its receipts (rows), and equals
   allotted (held or paid out) + returned to subscribers + kept by the
   fiscal host + taken back by Stripe from the fund (a refund or lost
   chargeback of an invoice; what the commons covered is not the fund's) +
   held in the fund; what Stripe took back never exceeds the receipts; each fund's allotments (rows) equal what
   their transactions (referenced by allotment id) moved into escrow; each
   allotment's attributions add up to its amount; what went back to
   subscribers equals the returns recorded as made. Held allotments count
   in 4 beside the pledges.
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
    SELECT item_id, currency, SUM(held) AS held FROM (
        SELECT item_id, currency, amount_minor - refunded_minor AS held
        FROM pledge WHERE state IN ('held', 'partially_refunded', 'disputed')
        UNION ALL
        SELECT item_id, currency, amount_minor - returned_minor AS held FROM pool_match WHERE state = 'held'
        UNION ALL
        SELECT item_id, currency, amount_minor AS held FROM fund_allotment WHERE state = 'held'
    ) holding GROUP BY item_id, currency
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
pool_ledger AS (
    SELECT a.pool_id,
           SUM(CASE WHEN a.kind = 'matching_pool' THEN e.amount_minor ELSE 0 END) AS held,
           -SUM(CASE WHEN a.kind = 'sponsor_payments' THEN e.amount_minor ELSE 0 END) AS paid_in,
           SUM(CASE WHEN a.kind = 'sponsor_returns' THEN e.amount_minor ELSE 0 END) AS returned
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    WHERE a.pool_id IS NOT NULL GROUP BY a.pool_id
),
pool_matched AS (
    SELECT t.reference_id AS match_id, SUM(e.amount_minor) AS into_escrow
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    JOIN ledger_transaction t ON t.id = e.transaction_id
    WHERE a.kind = 'item_escrow' AND t.reference_kind IN ('pool_match', 'pool_match_returned')
    GROUP BY t.reference_id
),
pool_figures AS (
    SELECT p.id, p.currency, p.received_minor, p.returned_minor,
           COALESCE(m.matched, 0) AS matched, COALESCE(m.matched_by_ledger, 0) AS matched_by_ledger,
           COALESCE(l.held, 0) AS held, COALESCE(l.paid_in, 0) AS paid_in, COALESCE(l.returned, 0) AS returned
    FROM matching_pool p
    LEFT JOIN (SELECT pm.pool_id, SUM(pm.amount_minor - pm.returned_minor) AS matched,
                      SUM(COALESCE(x.into_escrow, 0)) AS matched_by_ledger
               FROM pool_match pm LEFT JOIN pool_matched x ON x.match_id = pm.id
               GROUP BY pm.pool_id) m ON m.pool_id = p.id
    LEFT JOIN pool_ledger l ON l.pool_id = p.id
),
pool_rules AS (
    SELECT 'pool holds a negative amount' AS rule, id::text AS subject, currency, held AS amount
    FROM pool_figures WHERE held < 0
    UNION ALL
    SELECT 'pool money in differs from matched + returned + held', id::text, currency,
           paid_in - matched - returned - held
    FROM pool_figures WHERE paid_in <> matched + returned + held
    UNION ALL
    SELECT 'pool paid in differs from its budget received', id::text, currency, paid_in - received_minor
    FROM pool_figures WHERE paid_in <> received_minor
    UNION ALL
    SELECT 'pool returned differs from its sponsor returns', id::text, currency, returned - returned_minor
    FROM pool_figures WHERE returned <> returned_minor
    UNION ALL
    SELECT 'pool matches differ from their ledger entries', id::text, currency, matched - matched_by_ledger
    FROM pool_figures WHERE matched <> matched_by_ledger
    UNION ALL
    SELECT 'pool card refund differs from its ledger entries', r.id::text, r.currency,
           (CASE WHEN r.state = 'succeeded' THEN r.amount_minor ELSE 0 END) - COALESCE(SUM(e.amount_minor), 0)
    FROM pool_refund r
    LEFT JOIN ledger_transaction t
        ON t.idempotency_key IN ('pool-refund:' || r.id, 'pool-refund:' || r.id || ':' || 'failed')
    LEFT JOIN ledger_entry e ON e.transaction_id = t.id
        AND e.account_id IN (SELECT id FROM ledger_account WHERE kind = 'sponsor_returns')
    GROUP BY r.id, r.currency, r.state, r.amount_minor
    HAVING (CASE WHEN r.state = 'succeeded' THEN r.amount_minor ELSE 0 END) <> COALESCE(SUM(e.amount_minor), 0)
),
fund_ledger AS (
    SELECT a.fund_id,
           SUM(CASE WHEN a.kind = 'project_fund' THEN e.amount_minor ELSE 0 END) AS held,
           -SUM(CASE WHEN a.kind = 'subscriber_payments' THEN e.amount_minor ELSE 0 END) AS paid_in,
           SUM(CASE WHEN a.kind = 'subscriber_returns' THEN e.amount_minor ELSE 0 END) AS returned,
           SUM(CASE WHEN a.kind = 'fund_kept' THEN e.amount_minor ELSE 0 END) AS kept,
           SUM(CASE WHEN a.kind = 'subscriber_refunds' AND t.kind = 'fund_taken_back'
                    THEN e.amount_minor ELSE 0 END) AS taken_back,
           SUM(CASE WHEN a.kind = 'subscriber_refunds' THEN e.amount_minor ELSE 0 END) AS refunded_all
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    JOIN ledger_transaction t ON t.id = e.transaction_id
    WHERE a.fund_id IS NOT NULL GROUP BY a.fund_id
),
fund_allotted AS (
    SELECT t.reference_id AS allotment_id, SUM(e.amount_minor) AS into_escrow
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    JOIN ledger_transaction t ON t.id = e.transaction_id
    WHERE a.kind = 'item_escrow' AND t.reference_kind IN ('fund_allotment', 'fund_allotment_returned')
    GROUP BY t.reference_id
),
fund_figures AS (
    SELECT f.id, f.currency,
           COALESCE((SELECT SUM(r.amount_minor) FROM fund_receipt r WHERE r.fund_id = f.id), 0) AS received,
           COALESCE((SELECT SUM(x.amount_minor) FROM fund_return x
                     WHERE x.fund_id = f.id AND x.state = 'returned'), 0) AS returned_rows,
           COALESCE((SELECT SUM(CASE WHEN al.state IN ('held', 'released') THEN al.amount_minor ELSE 0 END)
                     FROM fund_allotment al WHERE al.fund_id = f.id), 0) AS allotted,
           COALESCE((SELECT SUM(COALESCE(fa.into_escrow, 0)) FROM fund_allotment al
                     LEFT JOIN fund_allotted fa ON fa.allotment_id = al.id WHERE al.fund_id = f.id), 0)
               AS allotted_by_ledger,
           COALESCE(l.held, 0) AS held, COALESCE(l.paid_in, 0) AS paid_in, COALESCE(l.returned, 0) AS returned,
           COALESCE(l.kept, 0) AS kept, COALESCE(l.taken_back, 0) AS taken_back,
           COALESCE(l.refunded_all, 0) AS refunded_all
    FROM project_fund f LEFT JOIN fund_ledger l ON l.fund_id = f.id
),
fund_rules AS (
    SELECT 'fund holds a negative amount' AS rule, id::text AS subject, currency, held AS amount
    FROM fund_figures WHERE held < 0
    UNION ALL
    SELECT 'fund paid in differs from its receipts', id::text, currency, paid_in - received
    FROM fund_figures WHERE paid_in <> received
    UNION ALL
    SELECT 'fund money in differs from allotted + returned + kept + taken back + held', id::text, currency,
           paid_in - allotted - returned - kept - taken_back - held
    FROM fund_figures WHERE paid_in <> allotted + returned + kept + taken_back + held
    UNION ALL
    SELECT 'fund taken back at Stripe exceeds its receipts', id::text, currency, refunded_all - received
    FROM fund_figures WHERE refunded_all > received
    UNION ALL
    SELECT 'fund allotments differ from their ledger entries', id::text, currency, allotted - allotted_by_ledger
    FROM fund_figures WHERE allotted <> allotted_by_ledger
    UNION ALL
    SELECT 'fund returned differs from its returns made', id::text, currency, returned - returned_rows
    FROM fund_figures WHERE returned <> returned_rows
    UNION ALL
    SELECT 'allotment attributions differ from its amount', al.id::text, al.currency,
           al.amount_minor - COALESCE(SUM(at.amount_minor), 0)
    FROM fund_allotment al LEFT JOIN fund_allotment_attribution at ON at.allotment_id = al.id
    GROUP BY al.id, al.currency, al.amount_minor
    HAVING al.amount_minor <> COALESCE(SUM(at.amount_minor), 0)
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
UNION ALL SELECT rule, subject, currency, amount FROM pool_rules
UNION ALL SELECT rule, subject, currency, amount FROM fund_rules
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
