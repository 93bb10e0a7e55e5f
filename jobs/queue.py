"""Enqueueing jobs after the database transaction commits.

With ``REDIS_URL`` set, jobs go to RQ queues named by purpose; a worker runs
them (``flask rq worker``). Without it, each job runs in-process right after
the commit, in a fresh application context (so in its own database session).
A rollback drops the jobs queued in the transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import redis
from flask import Flask, current_app
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

# Queues by purpose; each worker can serve any subset, highest priority first.
QUEUES = ("webhooks", "money", "sync", "notifications", "default")
_PENDING = "backlog_commons_pending_jobs"


@dataclass(frozen=True)
class PendingJob:
    """A job waiting for its transaction to commit."""

    func: Callable[..., Any]
    args: tuple
    kwargs: dict = field(default_factory=dict)
    queue: str = "default"
    timeout: int = 300  # seconds
    retry: Retry | None = None
    job_id: str | None = None
    at: datetime | None = None  # naive UTC: run no earlier than this (RQ scheduler)


def enqueue_after_commit(
    session: Session,
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    timeout: int = 300,
    retries: int = 0,
    retry_intervals: list[int] | None = None,
    job_id: str | None = None,
    at: datetime | None = None,
    **kwargs: Any,
) -> None:
    """Run ``func(*args, **kwargs)`` once ``session``'s transaction commits.

    ``queue`` must be one of :data:`QUEUES`; ``timeout`` is in seconds;
    ``retries`` and ``retry_intervals`` (seconds) become an RQ ``Retry``.
    ``job_id`` makes the enqueue idempotent on RQ (a second enqueue with the
    same id replaces nothing that already ran). ``at`` (naive UTC) defers the
    job with RQ's scheduler (workers run with it); without Redis a deferred
    job is not run here: the cron schedule picks up what is due. Raises
    ``ValueError`` for an unknown queue.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {', '.join(QUEUES)}")
    retry = Retry(max=retries, interval=retry_intervals or 0) if retries else None
    # Begin the transaction now, so that a rollback before any SQL still drops the job.
    session.connection()
    pending_jobs(session).append(
        PendingJob(func, args, kwargs, queue, timeout, retry, job_id, at)
    )


def pending_jobs(session: Session) -> list[PendingJob]:
    """The jobs waiting for ``session``'s transaction to commit (a caller that
    rolls back a savepoint drops the ones it queued inside it)."""
    return session.info.setdefault(_PENDING, [])


def redis_connection(app: Flask | None = None) -> redis.Redis | None:
    """The Redis connection for ``REDIS_URL``, or None when jobs run in-process."""
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    connection = app.extensions.get("redis")
    if connection is None:
        connection = app.extensions["redis"] = redis.Redis.from_url(url)
    return connection


def get_queue(name: str, app: Flask | None = None) -> Queue:
    """The RQ queue ``name`` on the application's Redis."""
    connection = redis_connection(app)
    if connection is None:
        raise RuntimeError("REDIS_URL is not set: jobs run in-process")
    return Queue(name, connection=connection)


def _dispatch(jobs: list[PendingJob]) -> None:
    app = current_app._get_current_object()
    connection = redis_connection(app)
    for job in jobs:
        try:
            _enqueue(app, connection, job)
        except redis.exceptions.RedisError:
            # The transaction is committed; the job is lost but its row says what
            # is left to do, and the periodic passes queue it again.
            app.logger.exception("could not enqueue %s; a periodic pass will retry", job.func.__name__)


def _enqueue(app: Flask, connection, job: PendingJob) -> None:
    if connection is not None and job.at is not None:
        Queue(job.queue, connection=connection).enqueue_at(
            job.at.replace(tzinfo=timezone.utc),
            job.func,
            *job.args,
            job_timeout=job.timeout,
            retry=job.retry,
            job_id=job.job_id,
            **job.kwargs,
        )
    elif connection is not None:
        Queue(job.queue, connection=connection).enqueue_call(
            job.func,
            args=job.args,
            kwargs=job.kwargs,
            timeout=job.timeout,
            retry=job.retry,
            job_id=job.job_id,
        )
    elif job.at is None:
        # In-process: a fresh app context gives the job its own session, as a
        # worker would. A failing job leaves its own trace (the job records
        # it); the caller's work is committed already and must not turn into
        # an error. A deferred job (``at``) is left to the cron passes.
        with app.app_context():
            try:
                job.func(*job.args, **job.kwargs)
            except Exception:
                app.logger.exception("in-process job %s failed", job.func.__name__)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint was released (SQLAlchemy 2.1 signals that too); the
        # transaction the jobs depend on is still open and may roll back.
        return
    jobs = session.info.pop(_PENDING, None)
    if jobs:
        _dispatch(jobs)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    # A savepoint rolled back keeps the outer transaction's jobs; callers do
    # not enqueue inside savepoints.
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)
