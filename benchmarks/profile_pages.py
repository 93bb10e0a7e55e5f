"""Profile the benchmark's pages in-process (issue 15): for each page, the
statements one request runs, the median wall and CPU time of ``--runs``
requests through Flask's test client, and optionally cProfile's top functions.

The response cache is off (``HTTP_CACHE_TYPE=NullCache``: every request
renders, as in the HTTP benchmark's cold phase) unless ``--warm``; item pages
rotate over 5,000 open items as the HTTP benchmark's do; ``webhook`` posts a
signed GitHub ``ping`` with a new delivery id each time (jobs queued on
``BENCH_REDIS_URL``, nothing processes them).

Usage (after ``benchmarks/generate.py``):
    python benchmarks/profile_pages.py item / '/?sdg=3&label=bug' /api/v1/items webhook \
        [--runs 50] [--profile 30] [--sort cumulative|tottime] [--warm]
Environment: BENCH_DATABASE_URL, BENCH_REDIS_URL (default redis://127.0.0.1:6379/4).
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

SECRET = "bench-webhook-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", help="paths, or 'item' (rotating item pages) or 'webhook'")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--profile", type=int, default=0, help="print this many cProfile rows per page")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--warm", action="store_true", help="response cache on (Redis)")
    args = parser.parse_args()

    import sqlalchemy as sa
    from bench_common import bench_url
    from sqlalchemy import event

    os.environ.update(DATABASE_URL=bench_url(), SECRET_KEY="benchmark", GITHUB_WEBHOOK_SECRET=SECRET,
                      REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
                      HTTP_CACHE_TYPE="RedisCache" if args.warm else "NullCache",
                      RATELIMIT_API="100000000 per minute", SESSION_COOKIE_SECURE="0")
    from marketplace import create_app
    from marketplace.extensions import db

    app = create_app()
    client = app.test_client()
    with app.app_context():
        engine = db.engine
        item_ids = list(db.session.scalars(sa.text(
            "SELECT id FROM backlog_item WHERE NOT hidden AND state = 'open' ORDER BY id LIMIT 5000")))
    statements = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args):
        statements[0] += 1

    body = json.dumps({"zen": "benchmark", "hook_id": 1}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    turn = [0]

    def request(page: str):
        turn[0] += 1
        if page == "webhook":
            return client.post("/webhooks/github", data=body, headers={
                "Content-Type": "application/json", "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": f"profile-{time.time_ns()}", "X-Hub-Signature-256": signature})
        if page == "item":
            return client.get(f"/items/{item_ids[(turn[0] * 7919) % len(item_ids)]}")
        return client.get(page)

    for page in args.pages:
        for _ in range(3):
            request(page)
        statements[0] = 0
        request(page)
        count = statements[0]
        wall, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = request(page)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        print(f"{page}: {response.status_code}; {count} statements; median {statistics.median(wall):.1f} ms "
              f"(CPU {statistics.median(cpu):.1f} ms), fastest {min(wall):.1f} ms", flush=True)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.runs):
                request(page)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.profile)
            print(out.getvalue())


if __name__ == "__main__":
    main()
