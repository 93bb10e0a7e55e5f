"""Background jobs by dotted name, enqueued after the database transaction commits.

A job is a function in the ``jobs`` package, decorated with :func:`job`,
which records its queue, timeout and retries once, where it is defined.
Services enqueue it by its dotted name (``enqueue("jobs.money.execute_payout",
payout.id)``) and never import ``jobs``: the name is resolved, and the job's
module imported, only when the job is queued or run.

With ``REDIS_URL`` set, jobs go to RQ queues named by purpose (RQ takes the
dotted name as the job's function); a worker runs them (``flask rq worker``).
Without it, each job runs in-process right after the commit, in a fresh
application context (so in its own database session), its function found
with RQ's own :func:`rq.utils.import_attribute`. A rollback drops the jobs
queued in the transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue, Retry
from rq.utils import import_attribute
from sqlalchemy import event
from sqlalchemy.orm import Session

from marketplace.extensions import db

# Queues by purpose; each worker can serve any subset, highest priority first.
QUEUES = ("webhooks", "money", "sync", "notifications", "default")
_PENDING = "backlog_commons_pending_jobs"


@dataclass(frozen=True)
class JobOptions:
    """How a job runs: its RQ queue (one of :data:`QUEUES`), its timeout in
    seconds, and its retries (``retries`` attempts after a failure, waiting
    ``retry_intervals`` seconds between them)."""

    queue: str = "default"
    timeout: int = 300
    retries: int = 0
    retry_intervals: tuple[int, ...] = ()

    @property
    def retry(self) -> Retry | None:
        """The RQ ``Retry`` of these options, None without retries."""
        return Retry(max=self.retries, interval=list(self.retry_intervals) or 0) if self.retries else None


# Every job's options, by dotted name ("jobs.money.execute_payout"); filled by :func:`job`.
JOBS: dict[str, JobOptions] = {}


def job(*, queue: str = "default", timeout: int = 300, retries: int = 0,
        retry_intervals: tuple[int, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a function as a job: record its options in :data:`JOBS` under
    its dotted name and return it unchanged. Raises ``ValueError`` for an
    unknown queue."""
    _check_queue(queue)
    options = JobOptions(queue, timeout, retries, tuple(retry_intervals))

    def declare(func: Callable[..., Any]) -> Callable[..., Any]:
        JOBS[dotted_name(func)] = options
        return func

    return declare


def dotted_name(func: Callable[..., Any]) -> str:
    """``module.function`` of a module-level function (what RQ stores as the job's function)."""
    return f"{func.__module__}.{func.__qualname__}"


def options_of(name: str) -> JobOptions:
    """The options :func:`job` recorded for the job ``name`` (a dotted name).
    The job's module is imported by name when it was not yet (a dynamic import,
    so that ``jobs`` stays out of the services' imports). Raises
    ``LookupError`` for a function that is no declared job, and what
    :func:`rq.utils.import_attribute` raises for a name that names nothing."""
    if name not in JOBS:
        import_attribute(name)
    try:
        return JOBS[name]
    except KeyError:
        raise LookupError(f"{name} is not declared as a job (@job)") from None


def enqueue(name: str, *args: Any, job_id: str | None = None, at: datetime | None = None, **kwargs: Any) -> None:
    """Run the job ``name`` (a dotted name) with ``args`` and ``kwargs`` once
    the current database transaction commits, with the options it declares
    (:func:`options_of`). ``job_id`` makes the enqueue idempotent on RQ;
    ``at`` (naive UTC) defers it (see :func:`enqueue_after_commit`)."""
    options = options_of(name)
    enqueue_after_commit(db.session, name, *args, queue=options.queue, timeout=options.timeout,
                         retries=options.retries, retry_intervals=list(options.retry_intervals),
                         job_id=job_id, at=at, **kwargs)


@dataclass(frozen=True)
class PendingJob:
    """A job waiting for its transaction to commit; ``func`` is a dotted name
    (or, for tests and tools, a callable)."""

    func: str | Callable[..., Any]
    args: tuple
    kwargs: dict = field(default_factory=dict)
    queue: str = "default"
    timeout: int = 300  # seconds
    retry: Retry | None = None
    job_id: str | None = None
    at: datetime | None = None  # naive UTC: run no earlier than this (RQ scheduler)

    @property
    def name(self) -> str:
        """The job's dotted name (for logs)."""
        return self.func if isinstance(self.func, str) else getattr(self.func, "__name__", repr(self.func))


def _check_queue(queue: str) -> None:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {', '.join(QUEUES)}")


def enqueue_after_commit(
    session: Session,
    func: str | Callable[..., Any],
    *args: Any,
    queue: str = "default",
    timeout: int = 300,
    retries: int = 0,
    retry_intervals: list[int] | None = None,
    job_id: str | None = None,
    at: datetime | None = None,
    **kwargs: Any,
) -> None:
    """Run ``func(*args, **kwargs)`` once ``session``'s transaction commits;
    ``func`` is a dotted name or a callable. Services use :func:`enqueue`,
    which takes the options the job declares.

    ``queue`` must be one of :data:`QUEUES`; ``timeout`` is in seconds;
    ``retries`` and ``retry_intervals`` (seconds) become an RQ ``Retry``.
    ``job_id`` makes the enqueue idempotent on RQ (a second enqueue with the
    same id replaces nothing that already ran). ``at`` (naive UTC) defers the
    job with RQ's scheduler (workers run with it); without Redis a deferred
    job is not run here: the cron schedule picks up what is due. Raises
    ``ValueError`` for an unknown queue.
    """
    _check_queue(queue)
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
    """The RQ queue ``name`` on the application's Redis. Raises ``RuntimeError`` without ``REDIS_URL``."""
    connection = redis_connection(app)
    if connection is None:
        raise RuntimeError("REDIS_URL is not set: jobs run in-process")
    return Queue(name, connection=connection)


def _dispatch(jobs: list[PendingJob]) -> None:
    app = current_app._get_current_object()
    connection = redis_connection(app)
    for pending in jobs:
        try:
            _enqueue(app, connection, pending)
        except redis.exceptions.RedisError:
            # The transaction is committed; the job is lost but its row says what
            # is left to do, and the periodic passes queue it again.
            app.logger.exception("could not enqueue %s; a periodic pass will retry", pending.name)


def _enqueue(app: Flask, connection, pending: PendingJob) -> None:
    if connection is not None and pending.at is not None:
        Queue(pending.queue, connection=connection).enqueue_at(
            pending.at.replace(tzinfo=UTC),
            pending.func,
            *pending.args,
            job_timeout=pending.timeout,
            retry=pending.retry,
            job_id=pending.job_id,
            **pending.kwargs,
        )
    elif connection is not None:
        Queue(pending.queue, connection=connection).enqueue_call(
            pending.func,
            args=pending.args,
            kwargs=pending.kwargs,
            timeout=pending.timeout,
            retry=pending.retry,
            job_id=pending.job_id,
        )
    elif pending.at is None:
        # In-process: a fresh app context gives the job its own session, as a
        # worker would. A failing job leaves its own trace (the job records
        # it); the caller's work is committed already and must not turn into
        # an error. A deferred job (``at``) is left to the cron passes.
        with app.app_context():
            try:
                func = import_attribute(pending.func) if isinstance(pending.func, str) else pending.func
                func(*pending.args, **pending.kwargs)
            except Exception:
                app.logger.exception("in-process job %s failed", pending.name)


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
