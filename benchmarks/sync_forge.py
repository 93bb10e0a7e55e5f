"""Benchmark: full sync of a recorded-shape forge of 5k and 50k issues.

A local HTTP server answers like GitHub (the fake forge of the test suite:
Link pagination, ETags, 304s). For each size, a fresh PostgreSQL database is
migrated, one repository is added, and a child process (the "worker") runs a
full sync, then two incremental syncs of the unchanged repository. The child
reports its wall time and its peak RSS (``VmHWM``).

Goals (issue 3): peak RSS of the 50k run ≤ 1.2 × the 5k run's; no request
other than 304 during the incremental sync of an unchanged repository.

Usage: python benchmarks/sync_forge.py [--sizes 5000 50000]
(BENCH_DATABASE_URL's server is used, database backlog_commons_sync_bench.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

WORDS = "offline sync form submission error export report dashboard registration patient record".split()


def fill(forge, size: int) -> None:
    from tests.forges.fake_forge import github_issue

    start = datetime(2024, 1, 1)
    issues = []
    for n in range(1, size + 1):
        body = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(120))
        issues.append(github_issue("bench", "big", n, updated_at=(start + timedelta(minutes=n)).isoformat() + "Z",
                                   state="closed" if n % 3 else "open", body=body, labels=("bug",) if n % 5 == 0 else (),
                                   pull=n % 10 == 0, merged_at=None))
    forge.repos[("bench", "big")] = {"id": 424242, "default_branch": "main", "issues": issues, "pulls": []}


def peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that
    over from the parent across fork and exec, and the parent holds the whole
    fake forge in memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(database_url: str, api_url: str, phase: str) -> None:
    """Run in the worker process: one sync, then print its figures as JSON."""
    import time

    from jobs.sync import sync_repository
    from marketplace import create_app
    from marketplace.extensions import db
    from marketplace.forges.models import Repository, SyncRun

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench", "GITHUB_API_URL": api_url})
    with app.app_context():
        repo = db.session.scalar(sa.select(Repository).where(Repository.owner == "bench"))
        started = time.perf_counter()
        run_id = sync_repository(repo.id, full=phase == "full")
        seconds = time.perf_counter() - started
        run = db.session.get(SyncRun, run_id)
        print(json.dumps({
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
            "status": run.status.value, "pages": run.pages, "not_modified": run.not_modified,
            "items": run.items_seen, "pulls": run.pull_requests_seen,
        }))


def prepare(database_url: str) -> None:
    from flask_migrate import upgrade

    from marketplace import create_app
    from marketplace.extensions import db
    from marketplace.forges.service import add_repository
    from marketplace.forges.urls import parse_repository_url
    from marketplace.projects.models import MemberProject, RegistryStatus

    url = sa.make_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        project = MemberProject(slug="bench", name="Bench", registry_status=RegistryStatus.active)
        db.session.add(project)
        db.session.flush()
        add_repository(project, parse_repository_url("https://github.com/bench/big"), label=None, actor="bench")
        db.session.commit()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from bench_common import bench_url

    from tests.forges.fake_forge import FakeForge

    database_url = sa.make_url(bench_url()).set(database="backlog_commons_sync_bench").render_as_string(
        hide_password=False)
    results = {}
    for size in args.sizes:
        prepare(database_url)
        forge = FakeForge("github").start()
        fill(forge, size)
        figures = {}
        for phase in ("full", "incremental", "steady"):
            forge.received.clear()
            out = subprocess.run(
                [sys.executable, __file__, "--child", database_url, forge.url, phase],
                check=True, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            ).stdout.strip().splitlines()[-1]
            figures[phase] = json.loads(out)
            figures[phase]["requests"] = len(forge.received)
            figures[phase]["non_304"] = len(forge.non_304())
        forge.stop()
        results[size] = figures
        full = figures["full"]
        print(f"{size:>6} issues: full sync {full['seconds']} s, {full['pages']} pages, peak RSS "
              f"{full['peak_rss_mb']} MB; incremental right after: {figures['incremental']['non_304']} of "
              f"{figures['incremental']['requests']} requests not 304; steady incremental: "
              f"{figures['steady']['non_304']} of {figures['steady']['requests']} not 304", flush=True)
    if len(results) >= 2:
        small, large = min(results), max(results)
        ratio = results[large]["full"]["peak_rss_mb"] / results[small]["full"]["peak_rss_mb"]
        print(f"peak RSS {large} / {small}: {ratio:.2f} (goal ≤ 1.2)")


if __name__ == "__main__":
    main()
