"""``flask rq worker`` and ``flask rq cron``: RQ with the application context."""
from __future__ import annotations

from pathlib import Path

import click
import redis
from flask import current_app
from flask.cli import AppGroup
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.registry import FailedJobRegistry

from jobs.notifications import send_waiting_outbox
from marketplace.scheduling.service import run_due
from marketplace.tasks import QUEUES, redis_connection

rq_cli = AppGroup("rq", help="RQ workers and the cron scheduler.")
jobs_cli = AppGroup("jobs", help="Periodic jobs without Redis.")
CRON_CONFIG = str(Path(__file__).resolve().with_name("cron_config.py"))


def _connection():
    connection = redis_connection(current_app)
    if connection is None:
        raise click.UsageError("REDIS_URL is not set: jobs run in-process after each commit, and the schedule "
                               "runs in `make run` or with `flask jobs run-due`")
    return connection


@rq_cli.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--no-scheduler", is_flag=True, help="Do not run jobs deferred to a later time here.")
def worker(queues: tuple[str, ...], burst: bool, no_scheduler: bool) -> None:
    """Run a worker on QUEUES (default: all, in priority order)."""
    connection = _connection()
    unknown = set(queues) - set(QUEUES)
    if unknown:
        raise click.UsageError(f"unknown queues: {', '.join(sorted(unknown))}")
    # The app context pushed by the Flask CLI is inherited by the forked job
    # processes. The scheduler moves jobs deferred with enqueue_at (rate-limit
    # waits) into their queue when due.
    Worker(list(queues or QUEUES), connection=connection).work(burst=burst, with_scheduler=not no_scheduler)


@rq_cli.command("health")
def health() -> None:
    """Redis, and per queue: jobs waiting, jobs failed, workers listening.
    Exits 1 when Redis does not answer or a queue has no worker (nothing
    would run its jobs)."""
    connection = _connection()
    try:
        connection.ping()
        workers = Worker.all(connection=connection)
    except redis.exceptions.RedisError as exc:
        click.echo(f"redis: down ({type(exc).__name__})")
        raise SystemExit(1) from None
    click.echo("redis: ok")
    unserved = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        listening = sum(1 for worker in workers if name in worker.queue_names())
        failed = FailedJobRegistry(queue=queue).count
        click.echo(f"{name}: {queue.count} waiting, {failed} failed, {listening} workers")
        if not listening:
            unserved.append(name)
    if unserved:
        click.echo(f"no worker listens on: {', '.join(unserved)}")
        raise SystemExit(1)


@rq_cli.command("cron")
@click.option("--config", default=CRON_CONFIG, show_default=True, help="RQ cron configuration file.")
def cron(config: str) -> None:
    """Run RQ's cron scheduler with the schedule in jobs/cron_config.py."""
    scheduler = CronScheduler(connection=_connection())
    scheduler.load_config_from_file(config)
    scheduler.start()


@jobs_cli.command("run-due")
def run_due_command() -> None:
    """Run every scheduled job that is due now, once (jobs/cron_config.py), and exit.

    For scripts and laptops without Redis; two of these at once never run one job twice.
    """
    ran = run_due()
    for name, outcome in ran:
        click.echo(f"{name}: {outcome}")
    if not ran:
        click.echo("nothing was due")
    if any(outcome != "ok" for _, outcome in ran):
        raise SystemExit(1)


@jobs_cli.command("send-outbox")
def send_outbox_command() -> None:
    """Send the e-mails and notices still waiting in the outbox (what the
    ``send-outbox`` schedule entry does), and print the count per outcome.
    Works with Redis down: nothing here needs it."""
    counts = send_waiting_outbox()
    click.echo(", ".join(f"{outcome}: {count}" for outcome, count in sorted(counts.items())) or "nothing waits")
    if counts.get("error"):
        raise SystemExit(1)
