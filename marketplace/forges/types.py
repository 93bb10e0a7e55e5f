"""Forge-neutral records of issues and pull requests, as every client returns them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class ForgePayloadError(ValueError):
    """A forge object lacks a field we need or has one of the wrong type."""


@dataclass(frozen=True)
class ForgeIssue:
    """An issue as the forge reports it. Times are naive UTC."""

    forge_id: int
    number: int
    title: str
    body: str | None
    state: str  # open | closed
    state_reason: str | None
    labels: list[str]
    author_login: str | None
    author_forge_id: int | None
    html_url: str
    comments_count: int
    locked: bool
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    # GitLab: the forge keeps the issue private (``confidential: true``).
    confidential: bool = False
    # GitLab: the issue this one was moved to / closed as a duplicate of (issue ids).
    moved_to_id: int | None = None
    duplicated_to_id: int | None = None


@dataclass(frozen=True)
class ForgePullRequest:
    """A pull/merge request as the forge reports it. Times are naive UTC."""

    number: int
    title: str
    body: str | None
    state: str  # open | closed | merged
    author_login: str | None
    author_forge_id: int | None
    html_url: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    forge_id: int | None = None
    forge_issue_id: int | None = None
    base_branch: str | None = None
    head_repository: str | None = None
    labels: list[str] = field(default_factory=list)
    author_deleted: bool = False


@dataclass(frozen=True)
class RepositoryInfo:
    """What the forge says about a repository now."""

    forge_id: int
    owner: str
    name: str
    default_branch: str | None
    visibility: str | None = None  # public | private | internal


@dataclass(frozen=True)
class ForgeReview:
    """A reviewer's verdict on a pull/merge request, as the forge lists it now.

    GitHub (``GET …/pulls/{number}/reviews``): one per submitted review, ``state``
    lower case (``approved``, ``changes_requested``, ``commented``, ``dismissed``,
    ``pending``), ``review_id`` its id. GitLab (``GET …/merge_requests/:iid/approvals``):
    one per approval standing now, ``state`` ``approved``, no id. Times naive UTC."""

    reviewer_forge_id: int | None
    state: str
    body: str
    submitted_at: datetime | None
    review_id: int | None = None
