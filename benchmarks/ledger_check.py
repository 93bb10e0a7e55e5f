"""Benchmark: ``flask ledger check`` over a generated ledger of 1M entries (PostgreSQL).

Builds, in the benchmark database, 1,000 items' escrow accounts and 500,000
balanced transactions of two entries each (a payment held in an item's
escrow), with the matching held pledges and cached bounties, using
set-based SQL. Then times
the one-pass invariant check. Goal (issue 5): ≤ 10 s on this machine.

Usage: python benchmarks/ledger_check.py [--transactions 500000]
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


def generate(transactions: int) -> None:
    sql = [
        "DELETE FROM ledger_entry", "DELETE FROM ledger_transaction", "DELETE FROM item_funding",
        "DELETE FROM ledger_account", "DELETE FROM pledge",
        "DELETE FROM user_account WHERE email = 'bench-funder@example.org'",
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
    for statement in sql:
        db.session.execute(sa.text(statement))
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=500_000)
    args = parser.parse_args()
    app = bench_app()
    with app.app_context():
        if db.session.scalar(sa.text("SELECT count(*) FROM backlog_item")) < 1000:
            raise SystemExit("run benchmarks/backlog_pages.py first: it generates the items")
        entries = db.session.scalar(sa.text("SELECT count(*) FROM ledger_entry"))
        held = db.session.scalar(sa.text("SELECT count(*) FROM pledge"))
        if entries != 2 * args.transactions or held != args.transactions:
            started = time.perf_counter()
            generate(args.transactions)
            print(f"generated {2 * args.transactions} entries in {time.perf_counter() - started:.1f} s")
        times = []
        for _ in range(3):
            started = time.perf_counter()
            violations = check()
            times.append(time.perf_counter() - started)
        print(f"ledger check over {2 * args.transactions} entries: {min(times):.2f} s best, "
              f"{sorted(times)[1]:.2f} s median of 3; violations: {len(violations)}")


if __name__ == "__main__":
    main()
