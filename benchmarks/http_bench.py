"""HTTP benchmark (issue 15): wrk against gunicorn with 2 workers, every page
as a ratio to a trivial endpoint of the same app in the same run.

For each page: throughput with wrk (``-t2 -c16``, ``--duration`` seconds)
**cold** (the response cache off: ``HTTP_CACHE_TYPE=NullCache``, so every
request renders; the item pages rotate over 5,000 item ids) and **warm**
(the response cache on Redis, one URL, after one request filled it), each
divided by the trivial endpoint's throughput measured by the same server in
the same phase; then single-request latency (median and p95 of
``--latency-runs`` sequential requests, cold and warm), and each worker's
peak RSS (``VmHWM``). Webhook intake (GitHub, signed, a new delivery id per
request) is measured with jobs queued on Redis (nothing processes them:
the intake is what is timed). Results go to ``benchmarks/RESULTS.md`` with
the machine's description.

Usage (after ``benchmarks/generate.py``):
    python benchmarks/http_bench.py [--duration 10] [--latency-runs 200] [--items-label 100k]
Environment: BENCH_DATABASE_URL (default the local benchmark database),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/4; flushed), BENCH_PORT (default 8765).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

SECRET = "bench-webhook-secret"
TRIVIAL = "/__bench__/trivial"
WEBHOOK_BODY = json.dumps({"action": "opened", "zen": "benchmark", "hook_id": 1,
                           "repository": {"id": 1, "full_name": "bench/none"}}).encode()


def pages(item_id: int) -> list[tuple[str, str]]:
    """(name, path) of every timed page; the item id is a visible, open item."""
    return [
        ("backlog list `/`", "/"),
        ("search `/?q=form`", "/?q=form"),
        ("filtered `/?sdg=3&label=bug`", "/?sdg=3&label=bug"),
        ("item page", f"/items/{item_id}"),
        ("API list `/api/v1/items`", "/api/v1/items"),
        ("API item", f"/api/v1/items/{item_id}"),
        ("`/transparency`", "/transparency"),
        ("API ledger `/api/v1/ledger`", "/api/v1/ledger"),
    ]


class Server:
    """gunicorn with 2 workers (the shipped gunicorn.conf.py's threads) on the benchmark database."""

    def __init__(self, port: int, env: dict[str, str]):
        self.port = port
        self.env = env
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            # The shipped settings (gunicorn.conf.py: threads, timeouts, access log), 2
            # workers, and no max-requests recycling: a worker restarting mid-measurement
            # serves nothing for seconds (imports, app factory) and the page reads 0 req/s.
            [str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
             "-w", "2", "--max-requests", "0", "-b", f"127.0.0.1:{self.port}",
             "--chdir", str(HERE), "--log-level", "warning", "bench_wsgi:app"],
            env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url(TRIVIAL), timeout=1).read()
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_peaks_kb(self) -> list[int]:
        """VmHWM (peak RSS, kB) of each worker (children of the gunicorn master)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True,
                             text=True).stdout.split()
        peaks = []
        for pid in out:
            status = Path(f"/proc/{pid}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
        return peaks

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def wrk(url: str, duration: int, script: str | None = None) -> float:
    """Requests per second that wrk measured (non-2xx/3xx answers are an error)."""
    # wrk gives up on a response after 2 s by default and does not count it: with 16
    # connections on 2 workers a 250 ms page already waits that long in the queue.
    command = ["wrk", "-t2", "-c16", f"-d{duration}s", "--timeout", "30s", "--latency"]
    if script:
        command += ["-s", script]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"errors from {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def latencies(url: str, runs: int, rotate: list[str] | None = None, post: bool = False) -> tuple[float, float]:
    """Median and p95 (ms) of ``runs`` sequential requests (fewer, at least 10,
    when they take more than 20 s in all: a slow page's figure is clear by then)."""
    times = []
    began = time.perf_counter()
    for n in range(runs):
        if n >= 10 and time.perf_counter() - began > 20:
            break
        target = rotate[n % len(rotate)] if rotate else url
        if post:
            request = webhook_request(target, f"lat-{time.time_ns()}")
        else:
            request = urllib.request.Request(target)
        start = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            response.read()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, round(len(times) * 0.95) - 1)]


def webhook_request(url: str, delivery: str) -> urllib.request.Request:
    signature = "sha256=" + hmac.new(SECRET.encode(), WEBHOOK_BODY, hashlib.sha256).hexdigest()
    return urllib.request.Request(url, data=WEBHOOK_BODY, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature})


def lua_scripts(tmp: Path, item_ids: list[int]) -> dict[str, str]:
    """wrk scripts: item pages rotating over ids (cold), and signed webhook deliveries with fresh ids."""
    ids = ",".join(map(str, item_ids))
    signature = "sha256=" + hmac.new(SECRET.encode(), WEBHOOK_BODY, hashlib.sha256).hexdigest()
    body = WEBHOOK_BODY.decode().replace("\\", "\\\\").replace('"', '\\"')
    scripts = {}
    for name, prefix in (("item", "/items/"), ("api_item", "/api/v1/items/")):
        path = tmp / f"{name}.lua"
        path.write_text(f"""local ids = {{{ids}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "{prefix}" .. ids[(n * 7919) % #ids + 1])
end
""")
        scripts[name] = str(path)
    path = tmp / "webhook.lua"
    path.write_text(f"""local n = 0
local thread_id = tostring(math.random(1, 1000000000))
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "ping"
wrk.headers["X-Hub-Signature-256"] = "{signature}"
request = function()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = "bench-" .. thread_id .. "-" .. n .. "-" .. os.time()
  return wrk.format()
end
""")
    scripts["webhook"] = str(path)
    return scripts


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    return (f"{cpu}, {os.cpu_count()} cores, {mem} GiB RAM; {platform.platform()}; Python "
            f"{platform.python_version()}; {pg}; {wrk_version.strip()}; gunicorn 2 workers × "
            f"{os.environ.get('GUNICORN_THREADS', '4')} threads (gunicorn.conf.py, no max-requests restarts); "
            f"PostgreSQL and Redis on the same machine, shared with other work (noisy)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--append", action="store_true", help="add this run's section after the file's")
    parser.add_argument("--only", help="time only the pages whose name contains this text (and no webhook)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop gunicorn on the way out
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    import redis
    import sqlalchemy as sa
    from bench_common import bench_app, bench_url

    app = bench_app()  # creates and migrates the database when needed
    engine = sa.create_engine(bench_url())
    with engine.connect() as conn:
        items = conn.scalar(sa.text("SELECT count(*) FROM backlog_item"))
        projects = conn.scalar(sa.text("SELECT count(*) FROM member_project"))
        entries = conn.scalar(sa.text("SELECT count(*) FROM ledger_entry"))
        item_ids = list(conn.scalars(sa.text(
            "SELECT id FROM backlog_item WHERE NOT hidden AND state = 'open' ORDER BY id LIMIT 5000")))
        conn.execute(sa.text("DELETE FROM webhook_delivery WHERE delivery_id LIKE 'bench-%' "
                             "OR delivery_id LIKE 'lat-%'"))
        conn.commit()
    engine.dispose()
    del app
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
    port = int(os.environ.get("BENCH_PORT", "8765"))
    base_env = dict(os.environ, DATABASE_URL=bench_url(), SECRET_KEY="benchmark", REDIS_URL=redis_url,
                    GITHUB_WEBHOOK_SECRET=SECRET, RATELIMIT_API="100000000 per minute",
                    PYTHONPATH=str(ROOT), SESSION_COOKIE_SECURE="0")
    item = item_ids[0]
    rows: dict[str, dict] = {}
    peaks: dict[str, list[int]] = {}
    loads: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = lua_scripts(Path(tmp), item_ids)
        for phase, cache in (("cold", "NullCache"), ("warm", "RedisCache")):
            redis.Redis.from_url(redis_url).flushdb()
            load_before = os.getloadavg()[0]
            with Server(port, dict(base_env, HTTP_CACHE_TYPE=cache)) as server:
                wrk(server.url(TRIVIAL), 2)  # warm up the workers and their connections
                trivial = wrk(server.url(TRIVIAL), args.duration)
                trivial_lat = latencies(server.url(TRIVIAL), args.latency_runs)
                rows.setdefault("trivial endpoint (harness only)", {})[phase] = (trivial, 1.0, *trivial_lat)
                print(f"{phase}: trivial {trivial:.0f} req/s", flush=True)
                for name, path in pages(item):
                    if args.only and args.only not in name:
                        continue
                    script = None
                    rotate = None
                    if phase == "cold" and path.startswith("/items/"):
                        script, rotate = scripts["item"], [server.url(f"/items/{i}") for i in item_ids]
                    elif phase == "cold" and path.startswith("/api/v1/items/"):
                        script, rotate = scripts["api_item"], [server.url(f"/api/v1/items/{i}") for i in item_ids]
                    else:
                        urllib.request.urlopen(server.url(path)).read()  # warm: fill the cache
                    # The workers serve the page a few times first (one request after the
                    # other: nothing left queued for the next measurement), so that what a
                    # process sets up once (the filter's project choices per data version)
                    # is not timed: cold means the response cache is off.
                    for n in range(6):
                        urllib.request.urlopen(rotate[n] if rotate else server.url(path)).read()
                    # The machine is shared: the trivial endpoint is measured again right
                    # before each page, and the page is divided by that figure.
                    trivial = wrk(server.url(TRIVIAL), args.duration)
                    rps = wrk(server.url(path), args.duration, script)
                    lat = latencies(server.url(path), args.latency_runs, rotate)
                    rows.setdefault(name, {})[phase] = (rps, rps / trivial, *lat)
                    print(f"{phase}: {name} {rps:.0f} req/s = {rps / trivial:.3f} x trivial; "
                          f"median {lat[0]:.1f} ms p95 {lat[1]:.1f} ms", flush=True)
                if phase == "cold" and not args.only:
                    name = "GitHub webhook intake (verify, store, enqueue)"
                    trivial = wrk(server.url(TRIVIAL), args.duration)
                    rps = wrk(server.url("/webhooks/github"), args.duration, scripts["webhook"])
                    lat = latencies(server.url("/webhooks/github"), args.latency_runs, post=True)
                    rows.setdefault(name, {})["cold"] = (rps, rps / trivial, *lat)
                    print(f"webhook {rps:.0f} req/s = {rps / trivial:.3f} x trivial", flush=True)
                peaks[phase] = server.worker_peaks_kb()
            loads[phase] = (load_before, os.getloadavg()[0])
    write(args.output, rows, peaks, items, projects, entries, args.append, loads)


def write(path: str, rows: dict, peaks: dict, items: int, projects: int, entries: int, append: bool,
          loads: dict[str, tuple[float, float]]) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [] if append else ["# HTTP benchmark results (`make benchmark`, `benchmarks/http_bench.py`)", ""]
    lines = head + [
        f"## {items:,} items", "",
        f"Measured {now} on: {machine()}.", "",
        f"Data: {items:,} items across {projects:,} member projects (benchmarks/generate.py), "
        f"{entries:,} ledger entries. wrk -t2 -c16; each ratio is to the trivial endpoint measured by "
        "the same server right before that page (the machine is shared, its load drifts); the "
        "trivial row shows the first such measurement of each phase. Cold: response cache off (every "
        "request renders, after 6 untimed requests; item pages rotate over 5,000 items; wrk's timeout 30 s). Warm: "
        "response cache on Redis. Latency: sequential single requests. Load average (1 min) at the "
        "start and end of each phase: " + "; ".join(f"{phase} {a:.1f} → {b:.1f}" for phase, (a, b) in loads.items())
        + ".", "",
        "| page | cold req/s | cold ÷ trivial | warm req/s | warm ÷ trivial | cold median / p95 ms "
        "| warm median / p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, phases in rows.items():
        cold, warm = phases.get("cold"), phases.get("warm")
        cells = [name]
        cells += [f"{cold[0]:.0f}", f"{cold[1]:.3f}"] if cold else ["–", "–"]
        cells += [f"{warm[0]:.0f}", f"{warm[1]:.3f}"] if warm else ["–", "–"]
        cells.append(f"{cold[2]:.1f} / {cold[3]:.1f}" if cold else "–")
        cells.append(f"{warm[2]:.1f} / {warm[3]:.1f}" if warm else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Peak RSS per worker (VmHWM, MiB) after each phase: " + "; ".join(
        f"{phase}: " + ", ".join(f"{kb / 1024:.0f}" for kb in kbs) for phase, kbs in peaks.items()), ""]
    before = Path(path).read_text() + "\n" if append and Path(path).exists() else ""
    Path(path).write_text(before + "\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
