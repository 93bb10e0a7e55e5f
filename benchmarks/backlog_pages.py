"""Benchmark: the backlog list and search pages against the raw SQL behind them.

On PostgreSQL with 100,000 items across 200 projects (generated on first run).
For each page, one warm request records every SQL statement it runs; then the
page (full request through Flask: queries, ORM, template) and the same
statements replayed on a plain psycopg connection are each timed N times.

Goals (issue 2): list page median ≤ 3 × its raw queries; search page median
≤ 2 × the raw full-text queries.

Usage: python benchmarks/backlog_pages.py [--runs 50] [--regenerate]
(BENCH_DATABASE_URL selects the database.)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402
from bench_common import bench_app, raw_connection  # noqa: E402

from marketplace.extensions import db  # noqa: E402

CASES = [
    ("list page", "/", "all"),
    ("list page, filtered (sdg + label)", "/?sdg=3&label=bug", "all"),
    ("search page, common word", "/?q=form", "fts"),
    ("search page, two words", "/?q=submission+error", "fts"),
    ("search page, prefix of a word", "/?q=immuniz", "fts"),
]


def capture(app, client, url: str) -> list[tuple[str, object]]:
    statements: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.get(url)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 200, (url, response.status_code)
    return statements


def time_page(client, url: str, runs: int) -> list[float]:
    for _ in range(5):
        client.get(url)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        response.get_data()
        samples.append(time.perf_counter() - start)
    return samples


def time_raw(conn, statements, runs: int) -> list[float]:
    def once():
        with conn.cursor() as cur:
            for statement, params in statements:
                cur.execute(statement, params or None)
                if cur.description is not None:
                    cur.fetchall()

    for _ in range(5):
        once()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()

    app = bench_app()
    with app.app_context():
        items = db.session.scalar(sa.text("SELECT count(*) FROM backlog_item"))
        db.session.remove()
    if items < 100_000 or args.regenerate:
        from generate import generate

        print("generating 200 projects and 100,000 items …", flush=True)
        with raw_connection(app) as conn:
            generate(conn, 200, 100_000)
    client = app.test_client()
    print(f"{'case':38} {'page ms':>9} {'raw ms':>9} {'ratio':>6}  statements")
    with raw_connection(app) as conn:
        conn.autocommit = True
        for name, url, compare in CASES:
            statements = capture(app, client, url)
            if compare == "fts":
                statements_raw = [s for s in statements if "to_tsquery" in s[0]]
            else:
                statements_raw = statements
            page = statistics.median(time_page(client, url, args.runs)) * 1000
            raw = statistics.median(time_raw(conn, statements_raw, args.runs)) * 1000
            raw_all = statistics.median(time_raw(conn, statements, args.runs)) * 1000
            print(f"{name:38} {page:9.2f} {raw:9.2f} {page / raw:6.2f}  "
                  f"{len(statements_raw)} compared of {len(statements)} (all raw: {raw_all:.2f} ms)")


if __name__ == "__main__":
    main()
