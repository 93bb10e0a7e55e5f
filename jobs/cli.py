"""``flask rq worker``: an RQ worker with the application context pushed."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from rq import Worker

from jobs.queue import QUEUES, redis_connection

rq_cli = AppGroup("rq", help="RQ workers.")


@rq_cli.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run a worker on QUEUES (default: all, in priority order)."""
    connection = redis_connection(current_app)
    if connection is None:
        raise click.UsageError("REDIS_URL is not set: jobs run in-process, no worker is needed")
    unknown = set(queues) - set(QUEUES)
    if unknown:
        raise click.UsageError(f"unknown queues: {', '.join(sorted(unknown))}")
    # The app context pushed by the Flask CLI is inherited by the forked job processes.
    Worker(list(queues or QUEUES), connection=connection).work(burst=burst)
