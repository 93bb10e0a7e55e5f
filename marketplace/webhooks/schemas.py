"""The shape of each forge webhook payload a handler reads, checked before it
reads anything.

A signed delivery of the right event can still have the wrong shape (a
number where an object is expected, ``true`` as an id, an id beyond 64 bits,
``\\u0000`` in a string). Each handler validates its payload against one of
these small pydantic models first; a payload that does not fit is recorded
as ``malformed`` with pydantic's account of the first problems, never a
crashed job. Only the fields our handlers use are described; every other
field is let through unchecked (``extra="allow"``), so a forge adding fields
changes nothing.

Follows GitHub's "Webhook events and payloads" (``issues``, ``pull_request``,
``repository``, ``installation``, ``installation_repositories``,
``issue_comment``) and GitLab's "Webhook events" (Issue Hook, Merge Request
Hook, Note Hook).
"""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

MAX_BIGINT = 2**63 - 1  # PostgreSQL bigint: every forge id column
MAX_INT = 2**31 - 1  # PostgreSQL integer: issue and pull request numbers


class MalformedPayload(ValueError):
    """A payload that does not fit its event's schema; the message names the fields."""


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate") from None
    return value


Text = Annotated[StrictStr, AfterValidator(_storable)]
ForgeId = Annotated[StrictInt, Field(ge=1, le=MAX_BIGINT)]
UserId = Annotated[StrictInt, Field(ge=0, le=MAX_BIGINT)]  # exports write 0 for an unknown author
Number = Annotated[StrictInt, Field(ge=1, le=MAX_INT)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]


def _visibility_level(value: int) -> int:
    if value not in (0, 10, 20):
        raise ValueError("is not a GitLab visibility level (0, 10 or 20)")
    return value


# Who may see a GitLab project: 0 private, 10 internal, 20 public. What decides
# whether items are published must be what the forge said, or the delivery is malformed.
VisibilityLevel = Annotated[StrictInt, AfterValidator(_visibility_level)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- GitHub ---------------------------------------------------------------------------

class GitHubAccount(_Shape):
    login: Text | None = None
    id: UserId | None = None


class GitHubRepository(_Shape):
    id: ForgeId | None = None
    name: Text | None = None
    full_name: Text | None = None
    owner: GitHubAccount | None = None
    default_branch: Text | None = None
    private: StrictBool | None = None  # decides whether the repository's items are published
    visibility: Text | None = None


class GitHubLabel(_Shape):
    name: Text | None = None


class GitHubIssue(_Shape):
    id: ForgeId
    number: Number
    title: Text
    body: Text | None = None
    state: Text
    state_reason: Text | None = None
    html_url: Text
    user: GitHubAccount | None = None
    labels: list[Union[GitHubLabel, Text]] | None = None
    comments: Count | None = None
    locked: StrictBool | None = None
    created_at: Text
    updated_at: Text
    closed_at: Text | None = None
    pull_request: dict | None = None


class GitHubIssueChanges(_Shape):
    new_issue: GitHubIssue | None = None
    new_repository: GitHubRepository | None = None
    old_issue: GitHubIssue | None = None
    old_repository: GitHubRepository | None = None


class GitHubIssuesEvent(_Shape):
    action: Text
    repository: GitHubRepository
    issue: GitHubIssue
    changes: GitHubIssueChanges | None = None


class GitHubBranch(_Shape):
    ref: Text | None = None
    repo: GitHubRepository | None = None


class GitHubPullRequest(_Shape):
    id: ForgeId
    number: Number
    title: Text
    body: Text | None = None
    state: Text
    merged: StrictBool | None = None
    merged_at: Text | None = None
    html_url: Text
    user: GitHubAccount | None = None
    labels: list[Union[GitHubLabel, Text]] | None = None
    base: GitHubBranch | None = None
    head: GitHubBranch | None = None
    created_at: Text
    updated_at: Text
    closed_at: Text | None = None


class GitHubPullRequestEvent(_Shape):
    action: Text
    repository: GitHubRepository
    pull_request: GitHubPullRequest


class GitHubReview(_Shape):
    id: ForgeId
    user: GitHubAccount | None = None
    state: Text
    body: Text | None = None
    submitted_at: Text | None = None


class GitHubPullRequestReviewEvent(_Shape):
    """``pull_request_review`` (issue 19: a mentor's review of a trainee's change)."""

    action: Text
    repository: GitHubRepository
    pull_request: GitHubPullRequest
    review: GitHubReview


class _From(_Shape):
    from_: Text | None = Field(default=None, alias="from")


class _OwnerFrom(_Shape):
    user: GitHubAccount | None = None
    organization: GitHubAccount | None = None


class _OwnerChange(_Shape):
    from_: _OwnerFrom | None = Field(default=None, alias="from")


class _RepositoryNameChange(_Shape):
    name: _From | None = None


class GitHubRepositoryChanges(_Shape):
    repository: _RepositoryNameChange | None = None
    owner: _OwnerChange | None = None


class GitHubRepositoryEvent(_Shape):
    action: Text
    repository: GitHubRepository
    changes: GitHubRepositoryChanges | None = None


class GitHubInstallation(_Shape):
    id: ForgeId | None = None


class GitHubInstallationEvent(_Shape):
    action: Text
    installation: GitHubInstallation | None = None
    repositories: list[GitHubRepository] | None = None
    repositories_added: list[GitHubRepository] | None = None
    repositories_removed: list[GitHubRepository] | None = None


class GitHubComment(_Shape):
    id: ForgeId
    body: Text | None = None
    user: GitHubAccount | None = None
    performed_via_github_app: dict | None = None


class GitHubIssueCommentEvent(_Shape):
    """``issue_comment`` (issue 22: commands in comments)."""

    action: Text
    repository: GitHubRepository
    issue: GitHubIssue
    comment: GitHubComment


# --- GitLab ---------------------------------------------------------------------------

class GitLabProject(_Shape):
    id: ForgeId | None = None
    web_url: Text | None = None
    path_with_namespace: Text | None = None
    default_branch: Text | None = None
    visibility: Text | None = None
    visibility_level: VisibilityLevel | None = None


class GitLabLabel(_Shape):
    title: Text | None = None


class GitLabAuthor(_Shape):
    id: UserId | None = None
    username: Text | None = None


class _GitLabObject(_Shape):
    id: ForgeId
    iid: Number
    title: Text
    description: Text | None = None
    state: Text
    action: Text | None = None
    url: Text | None = None
    web_url: Text | None = None
    author_id: UserId | None = None
    author: GitLabAuthor | None = None
    project_id: ForgeId | None = None
    created_at: Text
    updated_at: Text
    closed_at: Text | None = None
    labels: list[Union[GitLabLabel, Text]] | None = None


class GitLabIssue(_GitLabObject):
    user_notes_count: Count | None = None
    discussion_locked: StrictBool | None = None
    confidential: StrictBool | None = None  # decides whether the item is published
    moved_to_id: ForgeId | None = None
    duplicated_to_id: ForgeId | None = None


class GitLabMergeRequest(_GitLabObject):
    merged_at: Text | None = None
    target_branch: Text | None = None
    source_project_id: ForgeId | None = None
    target_project_id: ForgeId | None = None
    source: GitLabProject | None = None


class GitLabIssueHook(_Shape):
    project: GitLabProject
    object_attributes: GitLabIssue
    labels: list[Union[GitLabLabel, Text]] | None = None


class GitLabMergeRequestHook(_Shape):
    project: GitLabProject
    object_attributes: GitLabMergeRequest
    labels: list[Union[GitLabLabel, Text]] | None = None
    user: GitLabAuthor | None = None  # who acted (the approver of an "approved" action)


class GitLabNote(_Shape):
    id: ForgeId
    note: Text | None = None
    noteable_type: Text | None = None
    author_id: UserId | None = None
    action: Text | None = None
    system: StrictBool | None = None


class GitLabNoteIssue(_Shape):
    id: ForgeId | None = None
    iid: Number
    project_id: ForgeId | None = None


class GitLabNoteHook(_Shape):
    """``Note Hook`` (issue 22: commands in comments); only notes on issues are read."""

    project: GitLabProject
    user: GitLabAuthor | None = None
    object_attributes: GitLabNote
    issue: GitLabNoteIssue | None = None


def validate(schema: type[_Shape], payload: dict) -> _Shape:
    """``payload`` checked against ``schema``; raises :class:`MalformedPayload`
    naming up to three offending fields (``issue.id: …``)."""
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
                    for error in exc.errors()[:3]]
        raise MalformedPayload("; ".join(problems)) from None


# --- Stripe ---------------------------------------------------------------------------
# Stripe's API reference ("The Event object", "The Checkout Session object",
# "The Charge object", "The Refund object", "The Dispute object"): amounts are
# non-negative integers in the currency's smallest unit, currencies three-letter
# ISO codes in lower case, metadata values strings, object ids strings. Only
# the fields the money handlers read are described.

MAX_PLEDGE_ID = MAX_INT  # pledge.id is a PostgreSQL integer
StripeAmount = Annotated[StrictInt, Field(ge=0, le=10**15)]  # marketplace.money.MAX_MINOR
StripeCurrency = Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{3}$")]
StripeId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255, pattern=r"^[!-~]+$")]


class StripeRef(_Shape):
    id: StripeId


class StripeRefund(_Shape):
    id: StripeId
    object: Text | None = None
    amount: StripeAmount | None = None
    currency: StripeCurrency | None = None
    status: Text | None = None
    failure_reason: Text | None = None
    metadata: dict[str, Text] | None = None
    payment_intent: StripeId | StripeRef | None = None


class StripeRefundList(_Shape):
    data: list[StripeRefund] | None = None
    has_more: StrictBool | None = None


class StripeObject(_Shape):
    """The ``data.object`` of an event we handle (session, charge, refund, dispute, account, transfer)."""

    id: StripeId
    object: Text | None = None
    metadata: dict[str, Text] | None = None
    client_reference_id: Text | None = None
    payment_intent: StripeId | StripeRef | None = None
    amount: StripeAmount | None = None
    amount_total: StripeAmount | None = None
    amount_refunded: StripeAmount | None = None
    currency: StripeCurrency | None = None
    status: Text | None = None
    payment_status: Text | None = None
    paid: StrictBool | None = None
    disputed: StrictBool | None = None
    refunds: StripeRefundList | None = None
    failure_reason: Text | None = None
    balance_transactions: list | None = None


class StripeEventData(_Shape):
    object: StripeObject


class StripeEvent(_Shape):
    id: StripeId
    type: Text
    data: StripeEventData
