"""Benchmark: ``flask ledger check`` over a generated ledger of 1M entries (PostgreSQL).

Builds, in the benchmark database, 1,000 items' escrow accounts and 500,000
balanced transactions of two entries each (a payment held in an item's
escrow), with the matching held pledges and cached bounties, using
set-based SQL. With ``--payout-items N`` (default 500) the escrow of the
first N items is then paid out, as the payouts service does: one executed
payout per item (10% fee, one share paid by hand), its covered pledges
released, and the two ledger transactions of each payout. Then times the
one-pass invariant check. Goal (issue 5): ≤ 10 s on this machine.

Usage: python benchmarks/ledger_check.py [--transactions 500000] [--payout-items 500]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402
from bench_common import bench_app  # noqa: E402

from marketplace.extensions import db  # noqa: E402
from marketplace.ledger.check import check  # noqa: E402


def payout_sql(items: int) -> list[str]:
    """Pay out the escrow of the first ``items`` items, one executed payout each."""
    return [
        """INSERT INTO user_account (email, email_key, display_name, is_admin, is_funder, is_implementor,
                                     session_version, email_token_version, created_at)
           VALUES ('bench-recipient@example.org', 'bench-recipient@example.org', 'Bench recipient', false, false,
                   true, 1, 1, now())""",
        f"""INSERT INTO payout (item_id, currency, state, reason, gross_minor, fee_minor, fee_rate_bps, proposed_at,
                                approved_at, execute_after, executed_at, paid_at)
            SELECT item_id, currency, 'paid', 'merged', held_minor, (held_minor * 1000 + 5000) / 10000, 1000,
                   now(), now(), now(), now(), now()
            FROM (SELECT * FROM item_funding ORDER BY item_id LIMIT {items}) chosen""",
        """INSERT INTO payout_share (payout_id, recipient_id, position, weight, amount_minor, state, rail, attempts,
                                     refusals, refunded_after_minor, paid_at, manual_reference)
           SELECT p.id, u.id, 0, 1, p.gross_minor - p.fee_minor, 'paid', 'manual', 0, 0, 0, now(), 'BENCH-' || p.id
           FROM payout p, user_account u WHERE u.email = 'bench-recipient@example.org'""",
        """INSERT INTO payout_pledge (payout_id, pledge_id, amount_minor)
           SELECT p.id, pl.id, pl.amount_minor FROM payout p JOIN pledge pl ON pl.item_id = p.item_id""",
        "UPDATE pledge SET state = 'released' WHERE item_id IN (SELECT item_id FROM payout)",
        """INSERT INTO ledger_account (code, kind, user_id, created_at)
           SELECT 'contributor_payable:user:' || id, 'contributor_payable', id, now() FROM user_account
           WHERE email = 'bench-recipient@example.org'
           UNION ALL SELECT 'platform_fees', 'platform_fees', NULL, now()
           UNION ALL SELECT 'payouts_paid', 'payouts_paid', NULL, now()""",
        """INSERT INTO ledger_transaction (kind, idempotency_key, created_at)
           SELECT 'payout_released', 'payout:' || id || ':' || 'released', now() FROM payout
           UNION ALL
           SELECT 'payout_paid', 'payout-share:' || s.id || ':' || 'paid', now() FROM payout_share s""",
        """WITH released AS (SELECT p.*, t.id AS tx FROM payout p
                             JOIN ledger_transaction t ON t.idempotency_key = 'payout:' || p.id || ':' || 'released'),
                paid AS (SELECT s.*, t.id AS tx FROM payout_share s
                         JOIN ledger_transaction t ON t.idempotency_key = 'payout-share:' || s.id || ':' || 'paid'),
                acct AS (SELECT kind, item_id, id FROM ledger_account)
           INSERT INTO ledger_entry (transaction_id, account_id, currency, amount_minor)
           SELECT r.tx, a.id, r.currency, -r.gross_minor FROM released r
             JOIN acct a ON a.kind = 'item_escrow' AND a.item_id = r.item_id
           UNION ALL SELECT r.tx, (SELECT id FROM acct WHERE kind = 'platform_fees'), r.currency, r.fee_minor
             FROM released r WHERE r.fee_minor > 0
           UNION ALL SELECT r.tx, (SELECT id FROM acct WHERE kind = 'contributor_payable'), r.currency,
                            r.gross_minor - r.fee_minor FROM released r
           UNION ALL SELECT d.tx, (SELECT id FROM acct WHERE kind = 'contributor_payable'), 'USD', -d.amount_minor
             FROM paid d
           UNION ALL SELECT d.tx, (SELECT id FROM acct WHERE kind = 'payouts_paid'), 'USD', d.amount_minor
             FROM paid d""",
        "UPDATE item_funding SET held_minor = 0 WHERE item_id IN (SELECT item_id FROM payout)",
        "ANALYZE",
    ]


def generate(transactions: int, payout_items: int) -> None:
    sql = [
        "DELETE FROM payout_pledge", "DELETE FROM payout_share", "DELETE FROM payout",
        "DELETE FROM ledger_entry", "DELETE FROM ledger_transaction", "DELETE FROM item_funding",
        "DELETE FROM ledger_account", "DELETE FROM pledge",
        "DELETE FROM user_account WHERE email IN ('bench-funder@example.org', 'bench-recipient@example.org')",
        """INSERT INTO user_account (email, email_key, display_name, is_admin, is_funder, is_implementor,
                                     session_version, email_token_version, created_at)
           VALUES ('bench-funder@example.org', 'bench-funder@example.org', 'Bench funder', false, true, false,
                   1, 1, now())""",
        "INSERT INTO ledger_account (code, kind, created_at) VALUES ('funder_payments', 'funder_payments', now())",
        """INSERT INTO ledger_account (code, kind, item_id, created_at)
           SELECT 'item_escrow:item:' || id, 'item_escrow', id, now()
           FROM (SELECT id FROM backlog_item ORDER BY id LIMIT 1000) items""",
        f"""INSERT INTO ledger_transaction (id, kind, idempotency_key, created_at)
            SELECT g, 'pledge_received', 'bench:' || g, now() FROM generate_series(1, {transactions}) g""",
        f"""WITH escrows AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM ledger_account
                             WHERE kind = 'item_escrow'),
                 funder AS (SELECT id FROM ledger_account WHERE kind = 'funder_payments')
            INSERT INTO ledger_entry (transaction_id, account_id, currency, amount_minor)
            SELECT g, funder.id, 'USD', -(100 + g % 900) FROM generate_series(1, {transactions}) g, funder
            UNION ALL
            SELECT g, escrows.id, 'USD', 100 + g % 900 FROM generate_series(1, {transactions}) g
            JOIN escrows ON escrows.n = g % 1000""",
        f"""WITH escrows AS (SELECT item_id, row_number() OVER (ORDER BY id) - 1 AS n FROM ledger_account
                             WHERE kind = 'item_escrow')
            INSERT INTO pledge (item_id, funder_id, amount_minor, currency, rail, state, refunded_minor,
                                show_name, expires_at, created_at, held_at)
            SELECT escrows.item_id, (SELECT id FROM user_account WHERE email = 'bench-funder@example.org'),
                   100 + g % 900, 'USD', 'card', 'held', 0, false, now() + interval '1 year', now(), now()
            FROM generate_series(1, {transactions}) g JOIN escrows ON escrows.n = g % 1000""",
        """INSERT INTO item_funding (item_id, currency, held_minor, pending_minor)
           SELECT a.item_id, e.currency, SUM(e.amount_minor), 0 FROM ledger_entry e
           JOIN ledger_account a ON a.id = e.account_id WHERE a.kind = 'item_escrow'
           GROUP BY a.item_id, e.currency""",
        "SELECT setval('ledger_transaction_id_seq', (SELECT max(id) FROM ledger_transaction))",
        "ANALYZE",
    ]
    sql += payout_sql(payout_items) if payout_items else []
    for statement in sql:
        db.session.execute(sa.text(statement))
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=500_000)
    parser.add_argument("--payout-items", type=int, default=500)
    args = parser.parse_args()
    app = bench_app()
    with app.app_context():
        if db.session.scalar(sa.text("SELECT count(*) FROM backlog_item")) < 1000:
            raise SystemExit("run benchmarks/backlog_pages.py first: it generates the items")
        entries = db.session.scalar(sa.text("SELECT count(*) FROM ledger_entry"))
        held = db.session.scalar(sa.text("SELECT count(*) FROM pledge"))
        payouts = db.session.scalar(sa.text("SELECT count(*) FROM payout"))
        if held != args.transactions or payouts != args.payout_items or entries < 2 * args.transactions:
            started = time.perf_counter()
            generate(args.transactions, args.payout_items)
            entries = db.session.scalar(sa.text("SELECT count(*) FROM ledger_entry"))
            print(f"generated {entries} entries ({args.payout_items} items paid out) "
                  f"in {time.perf_counter() - started:.1f} s")
        times = []
        for _ in range(3):
            started = time.perf_counter()
            violations = check()
            times.append(time.perf_counter() - started)
        print(f"ledger check over {entries} entries, {args.payout_items} payouts: {min(times):.2f} s best, "
              f"{sorted(times)[1]:.2f} s median of 3; violations: {len(violations)}")


if __name__ == "__main__":
    main()
