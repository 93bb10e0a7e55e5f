"""Upserting forge issues and pull requests into the backlog.

The one path by which forge data enters the backlog: the snapshot loader uses
it now, live sync and webhooks later. Services flush, never commit.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from marketplace.backlog.models import (
    BacklogItem,
    ItemLabel,
    ItemState,
    PullRequest,
    PullRequestState,
)
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.forges.types import ForgeIssue, ForgePullRequest
from marketplace.timeutil import utcnow

_ISSUE_FIELDS = {
    "number": "number",
    "title": "title",
    "body": "body",
    "state_reason": "state_reason",
    "author_login": "author_login",
    "author_forge_id": "author_forge_id",
    "html_url": "html_url",
    "comments_count": "comments_count",
    "locked": "locked",
    "forge_created_at": "created_at",
    "forge_updated_at": "updated_at",
    "forge_closed_at": "closed_at",
}

_PULL_FIELDS = {
    "title": "title",
    "body": "body",
    "author_login": "author_login",
    "author_forge_id": "author_forge_id",
    "html_url": "html_url",
    "forge_created_at": "created_at",
    "forge_updated_at": "updated_at",
    "forge_closed_at": "closed_at",
    "merged_at": "merged_at",
}


@dataclass(frozen=True)
class UpsertResult:
    """``outcome`` is created, updated, unchanged or stale (older than what we hold)."""

    outcome: str
    row: BacklogItem | PullRequest


def upsert_issue(repo: Repository, issue: ForgeIssue) -> UpsertResult:
    """Create or update the backlog item of ``issue`` in ``repo``.

    Matched by (forge host, forge id). An update older than the stored
    ``forge_updated_at`` is ignored (``stale``): forges and webhooks deliver out
    of order. Commons fields (priority, funding goal, hidden) are never touched.
    """
    item = db.session.scalar(
        select(BacklogItem).where(
            BacklogItem.forge_host == repo.host, BacklogItem.forge_id == issue.forge_id
        )
    )
    created = item is None
    if created:
        item = BacklogItem(repository=repo, forge_host=repo.host, forge_id=issue.forge_id)
        db.session.add(item)
    elif item.forge_updated_at > issue.updated_at:
        return UpsertResult("stale", item)

    changed = created
    if item.repository_id != repo.id:
        item.repository = repo
        changed = True
    for column, attr in _ISSUE_FIELDS.items():
        value = getattr(issue, attr)
        if getattr(item, column) != value:
            setattr(item, column, value)
            changed = True
    state = ItemState(issue.state)
    if item.state != state:
        item.state = state
        changed = True
    if sorted(item.label_names) != sorted(issue.labels):
        item.labels = [ItemLabel(name=name) for name in issue.labels]
        changed = True
    if changed:
        item.synced_at = utcnow()
    db.session.flush()
    return UpsertResult("created" if created else "updated" if changed else "unchanged", item)


def upsert_pull_request(repo: Repository, pull: ForgePullRequest) -> UpsertResult:
    """Create or update the pull/merge request ``pull`` of ``repo``.

    Matched by (repository, number). Fields the source does not carry (the pull
    request id, base branch, fork) keep their stored values. A merged request
    never goes back to open or closed: merging is final on every forge.
    """
    row = db.session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repo.id, PullRequest.number == pull.number
        )
    )
    created = row is None
    if created:
        row = PullRequest(repository=repo, forge_host=repo.host, number=pull.number)
        db.session.add(row)
    elif row.forge_updated_at > pull.updated_at:
        return UpsertResult("stale", row)

    changed = created
    for column, attr in _PULL_FIELDS.items():
        value = getattr(pull, attr)
        if column == "merged_at" and value is None and row.merged_at is not None:
            continue
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    for column in ("forge_id", "forge_issue_id", "base_branch", "head_repository"):
        value = getattr(pull, column)
        if value is not None and getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    state = PullRequestState(pull.state)
    if row.state is PullRequestState.merged and state is not PullRequestState.merged:
        state = PullRequestState.merged
    if row.state != state:
        row.state = state
        changed = True
    if changed:
        row.synced_at = utcnow()
    db.session.flush()
    return UpsertResult("created" if created else "updated" if changed else "unchanged", row)
