"""Sync jobs (queue ``sync``): one repository, and the periodic passes.

The jobs hold the transactions (a committed page stays when a later one
fails); what a run records is :mod:`marketplace.forges.sync`'s.
"""
from __future__ import annotations

from marketplace.extensions import db
from marketplace.forges.clients import client_for
from marketplace.forges.http import Forbidden, ForgeError, RateLimited
from marketplace.forges.models import Repository, SyncStatus
from marketplace.forges.service import RepositoryConflict
from marketplace.forges.sync import (
    SYNC_TIMEOUT,
    begin_attempt,
    end_run,
    queue_due_syncs,
    queue_reconciliations,
    retry_after_outage,
    run_reconcile,
    run_sync,
    wait_or_give_up,
)
from marketplace.forges.types import ForgePayloadError
from marketplace.tasks import job


@job(queue="sync", timeout=SYNC_TIMEOUT)
def sync_repository(repository_id: int, run_id: int | None = None, full: bool = False, progress=None) -> int:
    """Sync one repository; returns the :class:`SyncRun` id.

    A rate limit schedules the same run again at the forge's reset time; an
    outage is retried later; a permission error (403) flags the repository for
    its maintainer and stops. After ``SYNC_MAX_ATTEMPTS`` attempts the run is
    given up and says so. Safe to run twice: upserts are idempotent.
    """
    started = begin_attempt(repository_id, run_id, full)
    db.session.commit()
    if started is None:
        return run_id  # a retried job after the run ended: nothing to do
    repo, run = started
    client = client_for(repo)
    try:
        run_sync(repo, run, client, progress=progress)
    except RateLimited as exc:
        _wait_or_give_up(run.id, exc.resume_at, str(exc))
    except Forbidden as exc:
        _end(run.id, SyncStatus.forbidden, f"the forge refused access; a maintainer must grant it: {exc}")
    except ForgePayloadError as exc:
        _end(run.id, SyncStatus.failed, f"the forge sent an object we cannot read: {exc}")
    except RepositoryConflict as exc:
        _end(run.id, SyncStatus.failed, str(exc))
    except ForgeError as exc:
        _wait_or_give_up(run.id, retry_after_outage(run.id), str(exc))
    except Exception as exc:
        # A bug or a surprise: the run must not stay "running" (that would
        # block every later sync of the repository). Recorded, then raised.
        _end(run.id, SyncStatus.failed, f"unexpected error: {type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        client.close()
    return run.id


def _wait_or_give_up(run_id: int, resume_at, reason: str) -> None:
    db.session.rollback()  # the page in flight; committed pages stay
    wait_or_give_up(run_id, resume_at, reason)
    db.session.commit()


def _end(run_id: int, status: SyncStatus, error: str) -> None:
    db.session.rollback()
    end_run(run_id, status, error)
    db.session.commit()


@job(queue="sync", timeout=600)
def sync_due_repositories() -> int:
    """Cron: an incremental sync of every syncable repository not already
    syncing, and the resumption of runs whose wait is over. Returns the count."""
    count = queue_due_syncs()
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
    count = queue_reconciliations()
    db.session.commit()
    return count
