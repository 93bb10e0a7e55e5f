"""Sync jobs (queue ``sync``): one repository, and the periodic passes."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.forges.clients import client_for
from marketplace.forges.http import Forbidden, ForgeError, RateLimited
from marketplace.forges.models import Repository, SyncRun, SyncRunStatus, SyncStatus
from marketplace.forges.service import RepositoryConflict
from marketplace.forges.sync import enqueue_sync, run_reconcile, run_sync, start_run
from marketplace.forges.types import ForgePayloadError
from marketplace.tasks import enqueue, job
from marketplace.timeutil import utcnow

SYNC_TIMEOUT = 3600  # seconds; a 50k-issue repository takes minutes
RETRY_DELAY = 120  # seconds after an outage, times the attempt number


@job(queue="sync", timeout=SYNC_TIMEOUT)
def sync_repository(repository_id: int, run_id: int | None = None, full: bool = False, progress=None) -> int:
    """Sync one repository; returns the :class:`SyncRun` id.

    A rate limit schedules the same run again at the forge's reset time; an
    outage is retried later; a permission error (403) flags the repository for
    its maintainer and stops. After ``SYNC_MAX_ATTEMPTS`` attempts the run is
    given up and says so. Safe to run twice: upserts are idempotent.
    """
    repo = db.session.get(Repository, repository_id)
    if repo is None:
        raise LookupError(f"no repository {repository_id}")
    run = db.session.get(SyncRun, run_id) if run_id else start_run(repo, full=full)
    if run.status in (SyncRunStatus.done, SyncRunStatus.failed):
        return run.id  # a retried job after the run ended: nothing to do
    run.attempts += 1
    run.resume_at = None
    db.session.commit()
    client = client_for(repo)
    try:
        run_sync(repo, run, client, progress=progress)
    except RateLimited as exc:
        _wait_or_give_up(run.id, repo.id, full, exc.resume_at, str(exc))
    except Forbidden as exc:
        _end(run.id, SyncStatus.forbidden, f"the forge refused access; a maintainer must grant it: {exc}")
    except ForgePayloadError as exc:
        _end(run.id, SyncStatus.failed, f"the forge sent an object we cannot read: {exc}")
    except RepositoryConflict as exc:
        _end(run.id, SyncStatus.failed, str(exc))
    except ForgeError as exc:
        _wait_or_give_up(run.id, repo.id, full, utcnow() + timedelta(seconds=RETRY_DELAY * run.attempts), str(exc))
    except Exception as exc:
        # A bug or a surprise: the run must not stay "running" (that would
        # block every later sync of the repository). Recorded, then raised.
        _end(run.id, SyncStatus.failed, f"unexpected error: {type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        client.close()
    return run.id


def _wait_or_give_up(run_id: int, repository_id: int, full: bool, resume_at, reason: str) -> None:
    db.session.rollback()  # the page in flight; committed pages stay
    run = db.session.get(SyncRun, run_id)
    if run.attempts >= current_app.config["SYNC_MAX_ATTEMPTS"]:
        _end(run_id, SyncStatus.failed, f"gave up after {run.attempts} attempts: {reason}")
        return
    run.status = SyncRunStatus.waiting
    run.resume_at = resume_at
    run.error = reason
    run.repository.sync_status = SyncStatus.running
    enqueue("jobs.sync.sync_repository", repository_id, run_id, full, at=resume_at)
    db.session.commit()


def _end(run_id: int, status: SyncStatus, error: str) -> None:
    db.session.rollback()
    run = db.session.get(SyncRun, run_id)
    run.status = SyncRunStatus.failed
    run.error = error
    run.finished_at = utcnow()
    run.repository.sync_status = status
    run.repository.sync_error = error
    db.session.commit()


@job(queue="sync", timeout=600)
def sync_due_repositories() -> int:
    """Cron: an incremental sync of every syncable repository not already
    syncing, and the resumption of runs whose wait is over. Returns the count."""
    now = utcnow()
    # A run queued or running for longer than a job may take lost its worker.
    for dead in db.session.scalars(select(SyncRun).where(
        SyncRun.status.in_([SyncRunStatus.queued, SyncRunStatus.running]),
        SyncRun.started_at < now - timedelta(seconds=2 * SYNC_TIMEOUT),
    )):
        dead.status = SyncRunStatus.failed
        dead.error = "abandoned: its worker stopped before the run ended"
        dead.finished_at = now
        dead.repository.sync_status = SyncStatus.failed
        dead.repository.sync_error = dead.error
    db.session.flush()
    busy = select(SyncRun.repository_id).where(
        SyncRun.status.in_([SyncRunStatus.queued, SyncRunStatus.running, SyncRunStatus.waiting])
    )
    count = 0
    for repo in db.session.scalars(
        select(Repository).where(Repository.sync_status != SyncStatus.forbidden, Repository.id.not_in(busy))
    ):
        enqueue_sync(repo)
        count += 1
    for run in db.session.scalars(
        select(SyncRun).where(SyncRun.status == SyncRunStatus.waiting, SyncRun.resume_at <= now)
    ):
        enqueue("jobs.sync.sync_repository", run.repository_id, run.id, run.full)
        count += 1
    db.session.commit()
    return count


@job(queue="sync", timeout=SYNC_TIMEOUT)
def reconcile_repository(repository_id: int) -> dict[str, int]:
    """Cron (daily): find what webhooks missed in one repository (see ``run_reconcile``)."""
    repo = db.session.get(Repository, repository_id)
    if repo is None:
        raise LookupError(f"no repository {repository_id}")
    client = client_for(repo)
    try:
        return run_reconcile(repo, client)
    finally:
        client.close()


@job(queue="sync", timeout=600)
def reconcile_all() -> int:
    """Cron: queue a reconciliation of every repository that syncs; returns the count."""
    repos = db.session.scalars(select(Repository.id).where(Repository.sync_status != SyncStatus.forbidden)).all()
    for repository_id in repos:
        enqueue("jobs.sync.reconcile_repository", repository_id)
    db.session.commit()
    return len(repos)
