"""Processing stored webhook deliveries: one handler per (source, event).

Handlers follow GitHub's "Webhook events and payloads" (``issues``,
``pull_request``, ``pull_request_review``, ``repository``, ``installation``,
``installation_repositories``, ``ping``) and GitLab's "Webhook events" (Issue
Hook, Merge Request Hook). Each returns ``(status, outcome)``; they flush,
the job commits.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError

from marketplace.backlog import ending
from marketplace.backlog.service import (
    mark_item_deleted,
    refresh_links,
    transfer_item,
    upsert_issue,
    upsert_pull_request,
)
from marketplace.extensions import db
from marketplace.forges import github as gh
from marketplace.forges import gitlab as gl
from marketplace.forges.clients import client_for
from marketplace.forges.http import NotFound
from marketplace.forges.models import Repository
from marketplace.forges.service import find_repository, move_repository
from marketplace.forges.types import ForgePayloadError
from marketplace.forges.urls import path_key
from marketplace.payments.stripe_events import apply_event
from marketplace.presence import commands
from marketplace.tasks import enqueue, pending_jobs
from marketplace.timeutil import parse_forge_timestamp, utcnow
from marketplace.training import service as training
from marketplace.training.models import ReviewVerdict
from marketplace.webhooks import schemas
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery

ACTOR = "job:process_delivery"
Outcome = tuple[DeliveryStatus, str]


def resolve_repository(host: str, forge_id, owner: str | None, name: str | None) -> Repository | None:
    """Our repository for a forge's repository object.

    By (host, numeric id) once the id is known, so a later rename keeps it.
    Otherwise by the path: the repository living at it now, whose id is
    learnt when it has none yet (a registry import knows no id); one with
    another id is another repository that took the name: not ours. A former
    path leads to the renamed repository only when the ids agree (or the
    payload has none): a new repository created with the old name is not it.
    """
    if isinstance(forge_id, int):
        repo = db.session.scalar(
            select(Repository).where(Repository.host == host, Repository.forge_id == forge_id)
        )
        if repo is not None:
            return repo
    if not owner or not name:
        return None
    key = path_key(owner, name)
    repo = db.session.scalar(select(Repository).where(Repository.host == host, Repository.path_key == key))
    if repo is not None:
        if repo.forge_id is None and isinstance(forge_id, int):
            repo.forge_id = forge_id
            db.session.flush()
        elif isinstance(forge_id, int) and repo.forge_id != forge_id:
            return None
        return repo
    former = find_repository(host, owner, name)
    if former is not None and (not isinstance(forge_id, int) or former.forge_id == forge_id):
        return former
    return None


def _reread(repo: Repository, number: int):
    """A callable that fetches issue ``number`` of ``repo`` from its forge's API
    (None when the forge no longer has it): how :func:`upsert_issue` breaks a
    tie between two events with the same ``updated_at``. Other forge errors
    propagate, so the job is retried."""
    def read():
        client = client_for(repo)
        try:
            return client.issue(repo, number)
        except NotFound:
            return None
        finally:
            client.close()
    return read


def record_visibility(repo: Repository, said: str | None) -> None:
    """What a delivery's repository object says about who may see ``repo``
    (``public``, ``private``, ``internal``; None: not said).

    A delivery may be late or redelivered: one sent before the repository
    was made private still says public. So a delivery may make a repository
    private at once (nothing is published by mistake), but a repository we
    hold as private or internal is published again only when the forge's API
    says it is public now (GitHub ``GET /repos/{owner}/{repo}``, GitLab
    ``GET /projects/:id``); an API that no longer shows it to us (404) keeps
    it private. Other forge errors propagate, so the delivery is retried.
    """
    if said == "public" and repo.visibility in ("private", "internal"):
        client = client_for(repo)
        try:
            said = client.repository_info(repo).visibility
        except NotFound:
            said = None
        finally:
            client.close()
    ending.set_repository_visibility(repo, said, utcnow(), actor=ACTOR)


def _github_repo(obj) -> Repository | None:
    if not isinstance(obj, dict):
        return None
    owner = obj.get("owner") if isinstance(obj.get("owner"), dict) else {}
    full = obj.get("full_name") if isinstance(obj.get("full_name"), str) else ""
    login, _, name = full.partition("/")
    repo = resolve_repository(gh.GITHUB_HOST, obj.get("id"), owner.get("login") or login, obj.get("name") or name)
    if repo is not None and isinstance(obj.get("default_branch"), str):
        repo.default_branch = obj["default_branch"]
    if repo is not None:
        record_visibility(repo, gh.repository_visibility(obj))
    return repo


def _github_issues(payload: dict, delivery: WebhookDelivery) -> Outcome:
    schemas.validate(schemas.GitHubIssuesEvent, payload)
    action = payload.get("action")
    repo = _github_repo(payload.get("repository"))
    if repo is None:
        return DeliveryStatus.ignored, "repository not in the commons"
    delivery.repository_id = repo.id
    issue = payload.get("issue")
    if not isinstance(issue, dict):
        return DeliveryStatus.ignored, "no issue in the payload"
    if gh.is_pull_request(issue):
        # "issues" events also fire for pull requests (labels, assignees): no item.
        return DeliveryStatus.ignored, f"issues.{action} on pull request #{issue.get('number')}: no item"
    changes = payload.get("changes") if isinstance(payload.get("changes"), dict) else {}
    if action == "deleted":
        # The payload is the issue as it was when deleted: apply it first (unless
        # older than what we hold), so that an edit or close delivered after the
        # deletion, and then stale, is not lost. Deleted before we saw it (or
        # before a late "opened"): it is kept as a deleted item, so that no
        # later event can bring it back.
        upsert_issue(repo, gh.parse_issue(issue), effects=False)
        item = mark_item_deleted(repo, gh._id(issue, "id"), utcnow(), actor=ACTOR)
        return DeliveryStatus.processed, (f"item {item.id} hidden: deleted on the forge" if item
                                          else "unknown issue deleted")
    if action == "transferred":
        new_issue = changes.get("new_issue")
        new_repo = _github_repo(changes.get("new_repository"))
        item = transfer_item(repo, gh._id(issue, "id"), new_repo, gh.parse_issue(new_issue), actor=ACTOR,
                             old_number=gh._id(issue, "number", gh.MAX_INT), old_url=issue.get("html_url"))
        return DeliveryStatus.processed, f"item {item.id if item else None} follows the transferred issue"
    if action == "opened" and isinstance(changes.get("old_issue"), dict):
        old_repo = _github_repo(changes.get("old_repository"))
        old_id = gh._id(changes["old_issue"], "id")
        item = transfer_item(old_repo, old_id, repo, gh.parse_issue(issue), actor=ACTOR,
                             old_number=gh._id(changes["old_issue"], "number", gh.MAX_INT),
                             old_url=changes["old_issue"].get("html_url"))
        return DeliveryStatus.processed, f"item {item.id if item else None} opened by a transfer"
    parsed = gh.parse_issue(issue)
    result = upsert_issue(repo, parsed, reread=_reread(repo, parsed.number))
    return DeliveryStatus.processed, f"item {result.row.id} {result.outcome}"


def _github_pull_request(payload: dict, delivery: WebhookDelivery) -> Outcome:
    schemas.validate(schemas.GitHubPullRequestEvent, payload)
    repo = _github_repo(payload.get("repository"))
    if repo is None:
        return DeliveryStatus.ignored, "repository not in the commons"
    delivery.repository_id = repo.id
    result = upsert_pull_request(repo, gh.parse_pull_request(payload.get("pull_request")))
    items = refresh_links(result.row)
    solved = [i.id for i in items if i.solved_by_id == result.row.id]
    return DeliveryStatus.processed, (
        f"pull request {result.row.id} {result.outcome}; solves items {solved}" if solved
        else f"pull request {result.row.id} {result.outcome}"
    )


# GitHub review states (webhook: lower case) that are a verdict; "commented" is not.
_GITHUB_VERDICTS = {"approved": ReviewVerdict.approved, "changes_requested": ReviewVerdict.changes_requested}


def _github_pull_request_review(payload: dict, delivery: WebhookDelivery) -> Outcome:
    """A review was submitted on a pull request: the pull request is refreshed as
    ``pull_request`` would, and a verdict by the mentor of a training claim it
    closes is recorded there (issue 19; matched by the reviewer's numeric id)."""
    event = schemas.validate(schemas.GitHubPullRequestReviewEvent, payload)
    repo = _github_repo(payload.get("repository"))
    if repo is None:
        return DeliveryStatus.ignored, "repository not in the commons"
    delivery.repository_id = repo.id
    result = upsert_pull_request(repo, gh.parse_pull_request(payload.get("pull_request")))
    refresh_links(result.row)
    review = event.review
    verdict = _GITHUB_VERDICTS.get((review.state or "").lower())
    if payload.get("action") != "submitted" or verdict is None or review.user is None or review.user.id is None:
        return DeliveryStatus.processed, f"pull request {result.row.id}: review {review.id} is no verdict"
    recorded = training.record_forge_review(
        result.row, reviewer_forge_id=review.user.id, verdict=verdict, note=review.body or "",
        external_id=f"{repo.host}:review:{review.id}", submitted_at=parse_forge_timestamp(review.submitted_at))
    return DeliveryStatus.processed, f"pull request {result.row.id}: mentor reviews recorded {recorded}"


def _github_repository(payload: dict, delivery: WebhookDelivery) -> Outcome:
    schemas.validate(schemas.GitHubRepositoryEvent, payload)
    action = payload.get("action")
    obj = payload.get("repository") or {}
    if action in ("privatized", "publicized"):
        repo = _github_repo(obj)  # records the visibility the payload gives
        if repo is None:
            return DeliveryStatus.ignored, "repository not in the commons"
        delivery.repository_id = repo.id
        return DeliveryStatus.processed, f"repository {repo.visibility}"
    if action == "deleted":
        # By the numeric id (or the path while we know no id): a repository
        # that merely took the name is another one.
        owner = obj.get("owner") if isinstance(obj.get("owner"), dict) else {}
        repo = resolve_repository(gh.GITHUB_HOST, obj.get("id"), owner.get("login"), obj.get("name"))
        if repo is None:
            return DeliveryStatus.ignored, "repository not in the commons"
        delivery.repository_id = repo.id
        ended = ending.end_repository(repo, utcnow(), actor=ACTOR)
        return DeliveryStatus.processed, f"repository deleted on the forge: items {ended} ended"
    if action not in ("renamed", "transferred"):
        return DeliveryStatus.ignored, f"repository.{action} not handled"
    changes = payload.get("changes") if isinstance(payload.get("changes"), dict) else {}
    repo = resolve_repository(gh.GITHUB_HOST, obj.get("id"), None, None)
    if repo is None:
        # Not matched by id: try the old path (the registry knew only that).
        old_name = ((changes.get("repository") or {}).get("name") or {}).get("from") or obj.get("name")
        old_owner = (((changes.get("owner") or {}).get("from") or {}).get("user") or {}).get("login") \
            or (((changes.get("owner") or {}).get("from") or {}).get("organization") or {}).get("login") \
            or (obj.get("owner") or {}).get("login")
        repo = resolve_repository(gh.GITHUB_HOST, obj.get("id"), old_owner, old_name)
    if repo is None:
        return DeliveryStatus.ignored, "repository not in the commons"
    delivery.repository_id = repo.id
    new_owner, new_name = (obj.get("owner") or {}).get("login"), obj.get("name")
    if not isinstance(new_owner, str) or not isinstance(new_name, str):
        return DeliveryStatus.ignored, "no new owner/name in the payload"
    moved = move_repository(repo, new_owner, new_name, actor=ACTOR)
    return DeliveryStatus.processed, f"repository now {new_owner}/{new_name}" if moved else "no change"


def _github_installation(payload: dict, delivery: WebhookDelivery) -> Outcome:
    schemas.validate(schemas.GitHubInstallationEvent, payload)
    installation = payload.get("installation") if isinstance(payload.get("installation"), dict) else {}
    installation_id = installation.get("id")
    leaving = payload.get("action") == "deleted"
    known = 0
    for key in ("repositories", "repositories_added", "repositories_removed"):
        repos = payload.get(key)
        for obj in repos if isinstance(repos, list) else []:
            if not isinstance(obj, dict) or not isinstance(obj.get("full_name"), str):
                continue
            owner, _, name = obj["full_name"].partition("/")
            repo = resolve_repository(gh.GITHUB_HOST, obj.get("id"), owner, name)
            if repo is None or not isinstance(installation_id, int):
                continue
            if leaving or key == "repositories_removed":
                if repo.installation_id == installation_id:
                    repo.installation_id = None
            else:
                repo.installation_id = installation_id
            known += 1
    return DeliveryStatus.processed, (
        f"installation {installation_id} {payload.get('action')} recorded; {known} repositories of the commons"
    )


def _gitlab_repo(payload: dict) -> Repository | None:
    project = payload.get("project")
    if not isinstance(project, dict):
        return None
    host = (urlsplit(project.get("web_url") or "").hostname or "").lower()
    path = project.get("path_with_namespace") or ""
    owner, _, name = path.rpartition("/")
    # Older hooks have no project.id; the object names its project instead.
    attributes = payload.get("object_attributes") if isinstance(payload.get("object_attributes"), dict) else {}
    project_id = project.get("id") or attributes.get("project_id") or attributes.get("target_project_id")
    repo = resolve_repository(host, project_id, owner or None, name or None)
    if repo is not None and isinstance(project.get("default_branch"), str):
        repo.default_branch = project["default_branch"]
    if repo is not None:
        record_visibility(repo, gl.project_visibility(project))
    return repo


def _gitlab_issue(payload: dict, delivery: WebhookDelivery, *, confidential_event: bool = False) -> Outcome:
    schemas.validate(schemas.GitLabIssueHook, payload)
    repo = _gitlab_repo(payload)
    if repo is None:
        return DeliveryStatus.ignored, "project not in the commons"
    delivery.repository_id = repo.id
    parsed = gl.parse_issue(payload.get("object_attributes"), payload)
    if confidential_event and not parsed.confidential:
        # GitLab sends this event only for confidential issues (an issue made
        # public again comes as an Issue Hook); a payload without the flag,
        # as older GitLab versions send, is still a confidential issue.
        parsed = replace(parsed, confidential=True)
    result = upsert_issue(repo, parsed, reread=_reread(repo, parsed.number))
    return DeliveryStatus.processed, f"item {result.row.id} {result.outcome}"


# GitLab merge request hook actions that are a reviewer's verdict (GitLab has no "changes requested"
# on every tier: withdrawing an approval is the nearest).
_GITLAB_VERDICTS = {"approved": ReviewVerdict.approved, "approval": ReviewVerdict.approved,
                    "unapproved": ReviewVerdict.changes_requested, "unapproval": ReviewVerdict.changes_requested}


def _gitlab_merge_request(payload: dict, delivery: WebhookDelivery) -> Outcome:
    schemas.validate(schemas.GitLabMergeRequestHook, payload)
    repo = _gitlab_repo(payload)
    if repo is None:
        return DeliveryStatus.ignored, "project not in the commons"
    delivery.repository_id = repo.id
    attributes = payload.get("object_attributes") or {}
    action = attributes.get("action") if isinstance(attributes, dict) else None
    result = upsert_pull_request(repo, gl.parse_merge_request(attributes, action))
    refresh_links(result.row)
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    verdict = _GITLAB_VERDICTS.get(action)
    if verdict is not None and isinstance(user.get("id"), int):
        # GitLab's review verdict: an approval (or its withdrawal) by the mentor of a training claim (issue 19).
        recorded = training.record_forge_review(
            result.row, reviewer_forge_id=user["id"], verdict=verdict,
            note="" if verdict is ReviewVerdict.approved else "The approval was withdrawn on GitLab.",
            external_id=f"{repo.host}:delivery:{delivery.id}",
            submitted_at=parse_forge_timestamp(attributes.get("updated_at")))
        return DeliveryStatus.processed, f"merge request {result.row.id} {action}; mentor reviews recorded {recorded}"
    return DeliveryStatus.processed, f"merge request {result.row.id} {result.outcome} ({result.row.state.value})"


def _github_issue_comment(payload: dict, delivery: WebhookDelivery) -> Outcome:
    """A comment on an issue: its ``/claim`` or ``/unclaim`` runs once (issue 22)."""
    schemas.validate(schemas.GitHubIssueCommentEvent, payload)
    action = payload.get("action")
    if action not in ("created", "edited"):
        return DeliveryStatus.ignored, f"issue_comment.{action}: nothing to run"
    repo = _github_repo(payload.get("repository"))
    if repo is None:
        return DeliveryStatus.ignored, "repository not in the commons"
    delivery.repository_id = repo.id
    issue, comment = payload["issue"], payload["comment"]
    if gh.is_pull_request(issue):
        return DeliveryStatus.ignored, "a comment on a pull request"
    user = comment.get("user") if isinstance(comment.get("user"), dict) else {}
    event = commands.CommentEvent(
        host=repo.host, issue_forge_id=issue.get("id"), issue_number=issue.get("number"),
        comment_id=comment["id"], body=comment.get("body") or "", author_forge_id=user.get("id") or None,
        author_login=user.get("login"),
        by_bot=user.get("type") == "Bot" or comment.get("performed_via_github_app") is not None)
    handled, outcome = commands.handle_comment(repo, event, delivery_id=delivery.id)
    return (DeliveryStatus.processed if handled else DeliveryStatus.ignored), outcome


def _gitlab_note(payload: dict, delivery: WebhookDelivery) -> Outcome:
    """A note on an issue: its ``/claim`` or ``/unclaim`` runs once (issue 22)."""
    schemas.validate(schemas.GitLabNoteHook, payload)
    note = payload["object_attributes"]
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else None
    if note.get("noteable_type") != "Issue" or issue is None:
        return DeliveryStatus.ignored, f"a note on a {note.get('noteable_type')}: nothing to run"
    if note.get("system"):
        return DeliveryStatus.ignored, "a system note"
    repo = _gitlab_repo(payload)
    if repo is None:
        return DeliveryStatus.ignored, "project not in the commons"
    delivery.repository_id = repo.id
    if issue.get("project_id") is not None and repo.forge_id is not None and issue["project_id"] != repo.forge_id:
        return DeliveryStatus.ignored, "the note's issue belongs to another project"
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    event = commands.CommentEvent(
        host=repo.host, issue_forge_id=issue.get("id"), issue_number=issue.get("iid"), comment_id=note["id"],
        body=note.get("note") or "", author_forge_id=user.get("id") or note.get("author_id") or None,
        author_login=user.get("username"), by_bot=commands.is_gitlab_bot(user.get("username")))
    handled, outcome = commands.handle_comment(repo, event, delivery_id=delivery.id)
    return (DeliveryStatus.processed if handled else DeliveryStatus.ignored), outcome


HANDLERS = {
    ("github", "issues"): _github_issues,
    ("github", "pull_request"): _github_pull_request,
    ("github", "pull_request_review"): _github_pull_request_review,
    ("github", "repository"): _github_repository,
    ("github", "installation"): _github_installation,
    ("github", "installation_repositories"): _github_installation,
    ("github", "ping"): lambda payload, delivery: (DeliveryStatus.processed, "ping"),
    ("gitlab", "Issue Hook"): _gitlab_issue,
    # Confidential issues come by their own event (same payload, confidential: true).
    ("gitlab", "Confidential Issue Hook"): lambda payload, delivery: _gitlab_issue(
        payload, delivery, confidential_event=True),
    ("gitlab", "Merge Request Hook"): _gitlab_merge_request,
    ("github", "issue_comment"): _github_issue_comment,
    ("gitlab", "Note Hook"): _gitlab_note,
}


class _Undone(Exception):
    """A Stripe event that ended malformed or failed: its savepoint is rolled back."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome[1])
        self.outcome = outcome


def _stripe(payload: dict, delivery: WebhookDelivery) -> Outcome:
    """Apply a Stripe event all or nothing: one that ends ``malformed`` or
    ``failed`` (for a person to check, then replay) leaves no trace but its
    outcome — no hold without the refunds its charge lists, no mail queued."""
    queued = len(pending_jobs(db.session))
    try:
        with db.session.begin_nested():
            status, outcome = apply_event(payload, delivery)
            if status in (DeliveryStatus.malformed, DeliveryStatus.failed):
                raise _Undone((status, outcome))
    except _Undone as undone:
        del pending_jobs(db.session)[queued:]
        return undone.outcome
    return status, outcome


def handle(delivery: WebhookDelivery) -> Outcome:
    """Apply ``delivery``; returns its new status and outcome. Flushes.

    A payload that does not fit its event's schema (``schemas``), or whose
    fields the forge readers or the database refuse, changes nothing (its
    work runs in a savepoint) and is recorded ``malformed`` with the reason:
    retrying it could only fail again.

    Otherwise raises :class:`~marketplace.forges.types.ForgePayloadError` when the
    payload lacks what the event needs, and
    :class:`~marketplace.webhooks.models.NotMatchedYet` when its object cannot
    be matched yet (the delivery waits and is tried again).
    """
    payload = json.loads(delivery.body)
    if delivery.source == "stripe":
        return _stripe(payload, delivery)
    handler = HANDLERS.get((delivery.source, delivery.event))
    if handler is None:
        return DeliveryStatus.ignored, f"event {delivery.event!r} not handled"
    try:
        with db.session.begin_nested():
            return handler(payload, delivery)
    except (schemas.MalformedPayload, ForgePayloadError) as exc:
        return DeliveryStatus.malformed, f"malformed {delivery.event} payload: {exc}"[:2000]
    except DataError as exc:
        return DeliveryStatus.malformed, (
            f"malformed {delivery.event} payload: the database refused a value ({exc.orig})")[:2000]

class DeliveryMissing(LookupError):
    """No stored delivery has the id a job was given."""


def store(source: str, delivery_id: str, event: str, action: str | None, text: str) -> tuple[int, bool]:
    """Store one verified delivery under its unique ``(source, delivery_id)``
    and queue its processing after the caller's commit; returns the stored
    row's id and whether it is new. A delivery seen before (a redelivery) is
    stored once and processed once: nothing changes, except that one still
    pending (its job was lost) is queued again.

    One statement on the way in: ``INSERT … ON CONFLICT DO NOTHING RETURNING
    id`` (PostgreSQL and SQLite alike), so no savepoint is needed for a
    redelivery racing the first copy: the loser's insert returns no row and it
    reads the winner's."""
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new_id = db.session.scalar(
        insert(WebhookDelivery)
        .values(source=source, delivery_id=delivery_id, event=event, action=action, body=text,
                status=DeliveryStatus.pending, attempts=0, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
        .returning(WebhookDelivery.id)
    )
    if new_id is not None:
        enqueue_processing(new_id)
        return new_id, True
    existing = db.session.execute(select(WebhookDelivery.id, WebhookDelivery.status).where(
        WebhookDelivery.source == source, WebhookDelivery.delivery_id == delivery_id)).one()
    if existing.status is DeliveryStatus.pending:
        enqueue_processing(existing.id)
    return existing.id, False


def process(delivery_id: int, replay: bool = False) -> str:
    """Process one stored delivery under its row lock; returns its status. Flushes.

    Idempotent: a delivery already processed, ignored or malformed is left
    alone unless ``replay`` (an admin's replay). The row lock serialises two
    jobs for one delivery (a redelivery re-queued it while the first job ran):
    the second sees it processed. Raises :class:`DeliveryMissing`, and
    whatever :func:`handle` raises (the job records it with
    :func:`record_unfinished`).
    """
    delivery = db.session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise DeliveryMissing(f"no webhook delivery {delivery_id}")
    if delivery.status in (DeliveryStatus.processed, DeliveryStatus.ignored, DeliveryStatus.malformed) \
            and not replay:
        return delivery.status.value
    status, outcome = handle(delivery)
    delivery.status = status
    delivery.outcome = outcome
    delivery.attempts += 1
    delivery.processed_at = utcnow()
    db.session.flush()
    return status.value


def record_unfinished(delivery_id: int, status: DeliveryStatus, outcome: str) -> None:
    """Record an attempt that did not finish (``waiting`` or ``failed``, with
    its outcome, cut to 2000 characters) on the delivery, so that RQ's retry
    and the admin page see it. The caller rolled back the handler's work
    first and commits this on its own. Flushes."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    delivery.status = status
    delivery.attempts += 1
    delivery.outcome = outcome[:2000]
    db.session.flush()


STALE_AFTER = timedelta(minutes=5)


def requeue_pending() -> int:
    """Queue again every delivery still pending five minutes after it arrived
    (its job was lost, e.g. Redis was down). Returns the count."""
    stale = db.session.scalars(
        select(WebhookDelivery.id).where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.received_at < utcnow() - STALE_AFTER,
        )
    ).all()
    for delivery_id in stale:
        enqueue_processing(delivery_id)
    return len(stale)


def retry_waiting() -> dict:
    """Try again every delivery still ``waiting`` for its object to be
    matched (RQ's retries are spent). One waiting longer than
    ``WEBHOOK_WAITING_DAYS`` (default 3) becomes ``failed`` for a person to
    look at (the admin's count of failed deliveries), never dropped.
    Returns ``{"retried": n, "failed": n}``. Flushes."""
    days = current_app.config.get("WEBHOOK_WAITING_DAYS", 3)
    cutoff = utcnow() - timedelta(days=days)
    waiting = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.status == DeliveryStatus.waiting).order_by(WebhookDelivery.id)).all()
    retried = given_up = 0
    for delivery in waiting:
        if delivery.received_at < cutoff:
            delivery.status = DeliveryStatus.failed
            delivery.outcome = f"never matched in {days} days; check it, then replay ({delivery.outcome})"[:2000]
            given_up += 1
        else:
            enqueue_processing(delivery.id)
            retried += 1
    db.session.flush()
    return {"retried": retried, "failed": given_up}


def enqueue_processing(delivery_id: int, replay: bool = False) -> None:
    """Queue the processing of a stored delivery after the current commit
    (the job ``jobs.webhooks.process_delivery``: the ``webhooks`` queue, 120 s,
    RQ retries after 10, 60 and 300 s). Used by :func:`store`, the admin's
    replay and the cron passes."""
    enqueue("jobs.webhooks.process_delivery", delivery_id, replay)
