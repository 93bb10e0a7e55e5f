"""Full and incremental sync of a repository's issues and pull/merge requests.

Pages are processed as they arrive and committed one by one (so progress is
visible on the admin page and memory does not grow with the repository). The
cursor only ever comes from the forge's own ``updated_at`` values, never from
our clock; incremental runs ask for changes since the cursor minus an overlap,
and re-reads in the overlap are idempotent upserts.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from marketplace.backlog import ending
from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.backlog.service import (
    refresh_links,
    update_solved,
    upsert_issue,
    upsert_pull_request,
)
from marketplace.extensions import db
from marketplace.forges.http import CachedPage, NotFound, Page
from marketplace.forges.models import (
    ForgeKind,
    HttpCacheEntry,
    Repository,
    SyncRun,
    SyncRunStatus,
    SyncStatus,
)
from marketplace.forges.service import RepositoryConflict, move_repository
from marketplace.forges.types import ForgePullRequest
from marketplace.tasks import enqueue
from marketplace.timeutil import utcnow
from marketplace.training import queries as training_queries
from marketplace.training import service as training
from marketplace.training.models import ReviewVerdict

ACTOR = "job:sync_repository"
Progress = Callable[[SyncRun], None]


class DbPageCache:
    """ETags of processed pages, in ``http_cache_entry``."""

    def get(self, url: str) -> CachedPage | None:
        entry = db.session.scalar(select(HttpCacheEntry).where(HttpCacheEntry.url == url))
        return CachedPage(entry.etag, entry.next_url) if entry else None

    def max_updated(self, url: str) -> datetime | None:
        return db.session.scalar(select(HttpCacheEntry.max_updated_at).where(HttpCacheEntry.url == url))

    def store(self, page: Page, max_updated: datetime | None) -> None:
        if not page.etag:
            return
        entry = db.session.scalar(select(HttpCacheEntry).where(HttpCacheEntry.url == page.url))
        if entry is None:
            entry = HttpCacheEntry(url=page.url)
            db.session.add(entry)
        entry.etag, entry.next_url, entry.max_updated_at = page.etag, page.next_url, max_updated


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def refresh_repository_info(repo: Repository, client) -> None:
    """Learn the forge id and default branch; follow a rename or transfer.

    Raises :class:`RepositoryConflict` when the forge answers ``repo``'s path
    with a repository we already hold under another row (the path was a
    former name of it and the forge redirected): the numeric id says they
    are one repository, and this row must not take its id.
    """
    info = client.repository_info(repo)
    if repo.forge_id is None:
        holder = db.session.scalar(select(Repository).where(
            Repository.host == repo.host, Repository.forge_id == info.forge_id, Repository.id != repo.id))
        if holder is not None:
            raise RepositoryConflict(
                f"{repo.host}/{repo.full_name} is a former name of {holder.full_name} (same forge id "
                f"{info.forge_id}): it is that repository; remove this entry")
        repo.forge_id = info.forge_id
    if info.default_branch:
        repo.default_branch = info.default_branch
    ending.set_repository_visibility(repo, info.visibility, utcnow(), actor=ACTOR)
    if (info.owner, info.name) != (repo.owner, repo.name):
        move_repository(repo, info.owner, info.name, actor=ACTOR)


def run_sync(repo: Repository, run: SyncRun, client, *, progress: Progress | None = None) -> None:
    """Sync ``repo`` through ``client``, recording progress on ``run``.

    Commits after each page. Raises the client's :class:`ForgeError` on a
    rate limit, a permission error or an outage; the caller decides to wait,
    flag or retry. A 404 on pull requests marks them disabled and the issues
    still sync.
    """
    cache = DbPageCache()
    run.status = SyncRunStatus.running
    repo.sync_status = SyncStatus.running
    db.session.commit()

    if run.full or repo.forge_id is None or repo.default_branch is None:
        # Only when needed: an incremental run of an unchanged repository must
        # cost nothing but 304s. Renames arrive by webhook or with a full run.
        refresh_repository_info(repo, client)
    overlap = timedelta(seconds=current_app.config["SYNC_OVERLAP_SECONDS"])
    since = None if run.full or repo.sync_cursor is None else repo.sync_cursor - overlap
    newest = repo.sync_cursor

    for page in client.issue_pages(repo, since, cache):
        run.pages += 1
        if page.not_modified:
            run.not_modified += 1
            newest = _latest(newest, cache.max_updated(page.url))
        else:
            page_newest = None
            for obj in page.items:
                record = client.parse_list_item(obj)
                page_newest = _latest(page_newest, record.updated_at)
                if isinstance(record, ForgePullRequest):
                    upsert_pull_request(repo, record)
                    run.pull_requests_seen += 1
                else:
                    upsert_issue(repo, record)
                    run.items_seen += 1
            newest = _latest(newest, page_newest)
            cache.store(page, page_newest)
        db.session.commit()
        if progress:
            progress(run)

    if not repo.pulls_disabled or run.full:
        try:
            _sync_pulls(repo, run, client, cache, since, progress)
            repo.pulls_disabled = False
        except NotFound:
            # Pull/merge requests turned off on this repository: issues still sync.
            repo.pulls_disabled = True
    if not repo.pulls_disabled:
        sync_reviews(repo, client)

    repo.sync_cursor = newest
    repo.last_synced_at = utcnow()
    repo.sync_status = SyncStatus.ok
    repo.sync_error = None
    run.status = SyncRunStatus.done
    run.finished_at = utcnow()
    run.error = None
    db.session.commit()
    if progress:
        progress(run)


def _sync_pulls(repo, run, client, cache, since, progress) -> None:
    """Pull requests with their details (base branch, fork), newest first,
    stopping at the first one older than ``since``; links are recomputed.

    The pages' ETags are stored only once the pass is complete: the pass
    stops at an unchanged first page, which must never hide a later page
    that an interrupted run did not read."""
    done: list[tuple[Page, datetime | None]] = []
    for page in client.pull_pages(repo, cache):
        run.pages += 1
        if page.not_modified:
            run.not_modified += 1
            # Unchanged first page of "recently updated": nothing older changed either.
            break
        page_newest, oldest = None, None
        for obj in page.items:
            pull = client.parse_pull(obj)
            page_newest = _latest(page_newest, pull.updated_at)
            oldest = pull.updated_at if oldest is None else min(oldest, pull.updated_at)
            row = upsert_pull_request(repo, pull).row
            refresh_links(row)
            run.pull_requests_seen += 1
        done.append((page, page_newest))
        db.session.commit()
        if progress:
            progress(run)
        if since is not None and oldest is not None and oldest < since:
            break
    for page, newest in done:
        cache.store(page, newest)
    db.session.commit()


# Review states that are a verdict, as the pull_request_review webhook reads them
# ("commented", "dismissed" and "pending" are not); GitLab lists approvals only.
REVIEW_VERDICTS = {"approved": ReviewVerdict.approved, "changes_requested": ReviewVerdict.changes_requested}


def sync_reviews(repo: Repository, client) -> list[int]:
    """Fetch the reviews of ``repo``'s pull/merge requests that close an item
    under a mentored training claim (:func:`marketplace.training.queries.pulls_under_review`)
    and record each verdict exactly as the webhooks do
    (:func:`marketplace.training.service.record_forge_review`, same external
    ids: a review seen by webhook and by sync is recorded once), for when a
    ``pull_request_review`` delivery (GitHub) or an approval hook (GitLab) was
    missed. One request per such pull request (``client.pull_reviews``): a
    handful, as a trainee holds one active training claim at a time. Commits
    after each pull request. Returns the ids of the reviews recorded. A pull
    request the forge no longer has is skipped; other forge errors
    (rate limit, outage) are raised for the run to wait or retry."""
    recorded: list[int] = []
    for pull in training_queries.pulls_under_review(repo.id):
        try:
            reviews = client.pull_reviews(repo, pull.number)
        except NotFound:
            continue
        for found in reviews:
            verdict = REVIEW_VERDICTS.get(found.state)
            if verdict is None or found.reviewer_forge_id is None:
                continue
            if found.review_id is not None:
                external_id = f"{repo.host}:review:{found.review_id}"
            else:
                at = found.submitted_at.isoformat() if found.submitted_at else ""
                external_id = (f"{repo.host}{training.SYNC_SIGHTING}{pull.forge_id or pull.number}:"
                               f"{found.reviewer_forge_id}:{at}")
            recorded += training.record_forge_review(
                pull, reviewer_forge_id=found.reviewer_forge_id, verdict=verdict, note=found.body,
                external_id=external_id, submitted_at=found.submitted_at, standing=found.review_id is None)
        db.session.commit()
    return recorded


def start_run(repo: Repository, *, full: bool) -> SyncRun:
    """A new queued :class:`SyncRun` for ``repo`` (flushed, not committed)."""
    run = SyncRun(repository=repo, full=full, status=SyncRunStatus.queued)
    db.session.add(run)
    db.session.flush()
    return run


SYNC_TIMEOUT = 3600  # seconds a sync job may take; a 50k-issue repository takes minutes
RETRY_DELAY = 120  # seconds after an outage, times the attempt number


def enqueue_sync(repo: Repository, *, full: bool = False) -> SyncRun:
    """Queue a sync of ``repo`` (the job ``jobs.sync.sync_repository``) after
    the caller's commit; returns its run (flushed)."""
    run = start_run(repo, full=full)
    enqueue("jobs.sync.sync_repository", repo.id, run.id, full)
    return run


def begin_attempt(repository_id: int, run_id: int | None, full: bool) -> tuple[Repository, SyncRun] | None:
    """The repository and the run a sync job works on (a new run when
    ``run_id`` is None), with one more attempt counted; None when the run
    ended already (a job retried after its end: nothing to do). Raises
    ``LookupError`` for an unknown repository. Flushes."""
    repo = db.session.get(Repository, repository_id)
    if repo is None:
        raise LookupError(f"no repository {repository_id}")
    run = db.session.get(SyncRun, run_id) if run_id else start_run(repo, full=full)
    if run.status in (SyncRunStatus.done, SyncRunStatus.failed):
        return None
    run.attempts += 1
    run.resume_at = None
    db.session.flush()
    return repo, run


def wait_or_give_up(run_id: int, resume_at: datetime, reason: str) -> None:
    """A run stopped by a rate limit or an outage: it waits until
    ``resume_at`` (naive UTC) and is queued again for then, or it fails
    after ``SYNC_MAX_ATTEMPTS`` attempts (:func:`end_run`). The caller rolled
    back the page in flight. Flushes."""
    run = db.session.get(SyncRun, run_id)
    if run.attempts >= current_app.config["SYNC_MAX_ATTEMPTS"]:
        end_run(run_id, SyncStatus.failed, f"gave up after {run.attempts} attempts: {reason}")
        return
    run.status = SyncRunStatus.waiting
    run.resume_at = resume_at
    run.error = reason
    run.repository.sync_status = SyncStatus.running
    enqueue("jobs.sync.sync_repository", run.repository_id, run_id, run.full, at=resume_at)
    db.session.flush()


def retry_after_outage(run_id: int) -> datetime:
    """When a run stopped by a forge outage is tried again: ``RETRY_DELAY``
    seconds times its attempts from now (naive UTC)."""
    return utcnow() + timedelta(seconds=RETRY_DELAY * db.session.get(SyncRun, run_id).attempts)


def end_run(run_id: int, status: SyncStatus, error: str) -> None:
    """End a run as failed with ``error``; its repository's sync status becomes
    ``status`` (``failed``, or ``forbidden`` for its maintainer). Flushes."""
    run = db.session.get(SyncRun, run_id)
    run.status = SyncRunStatus.failed
    run.error = error
    run.finished_at = utcnow()
    run.repository.sync_status = status
    run.repository.sync_error = error
    db.session.flush()


def queue_due_syncs(now: datetime | None = None) -> int:
    """Queue an incremental sync of every syncable repository not already
    syncing, and the resumption of runs whose wait is over; runs queued or
    running for longer than two job timeouts lost their worker and fail.
    Returns how many were queued. Flushes."""
    now = now or utcnow()
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
    db.session.flush()
    return count


def queue_reconciliations() -> int:
    """Queue a reconciliation (the job ``jobs.sync.reconcile_repository``) of
    every repository that syncs; returns the count."""
    repos = db.session.scalars(select(Repository.id).where(Repository.sync_status != SyncStatus.forbidden)).all()
    for repository_id in repos:
        enqueue("jobs.sync.reconcile_repository", repository_id)
    return len(repos)


def _end_deleted_issues(repo: Repository, client, listed: set[int]) -> int:
    """Items of ``repo`` the forge's full list no longer shows: each is asked
    for on its own, and ends (:func:`marketplace.backlog.ending.end_item`)
    only when the forge says it was deleted (GitHub 410, GitLab 404). A
    confidential issue is never ended so: GitLab answers 404 for a
    confidential issue our token may not read, as for a deleted one; it stays
    withheld, its money waiting for the window
    (:func:`marketplace.backlog.ending.end_withheld`), and comes back if the
    forge makes it public. Commits per item. Returns how many ended."""
    missing = db.session.scalars(select(BacklogItem).where(
        BacklogItem.repository_id == repo.id, BacklogItem.deleted_at.is_(None),
        BacklogItem.private_reason.is_distinct_from("confidential"),
        BacklogItem.forge_id.not_in(listed)).order_by(BacklogItem.id)).all()
    ended = 0
    for item in missing:
        if client.issue_deleted(repo, item.number):
            ending.end_item(item, utcnow(), actor=ACTOR)
            ended += 1
            db.session.commit()
    return ended


def run_reconcile(repo: Repository, client) -> dict[str, int]:
    """Compare everything the forge lists with what we hold; fix what webhooks missed.

    Reads every issue and pull/merge request without conditional requests (a
    304 would hide which numbers exist). Issues are upserted; an item the
    list no longer shows is asked for on its own and ends only when the
    forge says it was deleted (a transfer or a permission problem never
    deletes an item). Pull/merge requests we hold that the forge no longer lists are
    marked deleted (GitLab sends no hook for that), and the items they solved
    are re-evaluated. Returns counts; commits per page.
    """
    counts = {"items": 0, "pull_requests": 0, "deleted_pull_requests": 0}
    refresh_repository_info(repo, client)
    listed: set[int] = set()
    for page in client.issue_pages(repo, None, None):
        for obj in page.items:
            record = client.parse_list_item(obj)
            if isinstance(record, ForgePullRequest):
                upsert_pull_request(repo, record)
            else:
                upsert_issue(repo, record)
                listed.add(record.forge_id)
                counts["items"] += 1
        db.session.commit()
    if listed:
        counts["deleted_items"] = _end_deleted_issues(repo, client, listed)
    if repo.pulls_disabled:
        return counts
    seen: set[int] = set()
    try:
        for page in client.pull_pages(repo, None):
            for obj in page.items:
                row = upsert_pull_request(repo, client.parse_pull(obj)).row
                refresh_links(row)
                seen.add(row.number)
                counts["pull_requests"] += 1
            db.session.commit()
    except NotFound:
        repo.pulls_disabled = True
        db.session.commit()
        return counts
    if repo.forge is not ForgeKind.gitlab or not seen:
        # GitHub pull requests cannot be deleted; an empty list is more likely
        # a glitch than every merge request deleted at once.
        return counts
    gone = db.session.scalars(
        select(PullRequest).where(
            PullRequest.repository_id == repo.id,
            PullRequest.number.not_in(seen),
            PullRequest.deleted_at.is_(None),
        )
    ).all()
    for pull in gone:
        pull.deleted_at = utcnow()
        counts["deleted_pull_requests"] += 1
        for link in pull.links:
            if link.item is not None:
                update_solved(link.item)
    db.session.commit()
    return counts
