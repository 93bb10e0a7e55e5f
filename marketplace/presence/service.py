"""The living comment and the ``bounty`` label of funded items, opt-in per repository.

When an item of a repository that opted in is first funded, one comment is
posted on its issue (the bounty, its state, the link, the badge) and the
label ``bounty`` added; every later change (more money, a claim approved,
solved, paid, refunded, a comment command's answer) edits that same
comment and sets the label. Each forge write is a job after commit
(``jobs.presence.refresh_item``), idempotent by (item, state version): the
state version is a digest of the text the comment must show, and a job
whose version is written already writes nothing.

Never twice: our comment carries a hidden marker (:func:`marker`). Before
posting, the issue's comments are searched for it, so a job retried after
the forge made the comment but before its id was stored adopts that
comment instead of posting a second one. A comment a person deleted is
posted again once; deleted again, it is left alone and the project's
maintainers are told. Turning the repository off stops every write: each
write first reads the opt-in under the item's row lock.

Like the sync (:func:`marketplace.forges.sync.run_sync`), a job commits
after each forge write, so that a write the forge made is never forgotten
by a later failure. A rate limit reschedules the job at the forge's reset
time (never sleeps) and records the wait; the cron pass
(:func:`resume_due`) picks up what is due when no scheduler runs.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.forges.clients import client_for, gitlab_api_url
from marketplace.forges.gitlab import GitLabClient
from marketplace.forges.http import Forbidden, ForgeError, NotFound, RateLimited, Unavailable
from marketplace.forges.models import ForgeKind, Repository
from marketplace.notifications.links import url_for_public
from marketplace.notifications.mail import queue_mail, recipient_language, render
from marketplace.presence.badges import money_list
from marketplace.presence.models import ForgeCommand, ForgeWrite, ItemPresence, RepositoryPresence
from marketplace.presence.queries import BountyState, bounty_state, presence_of
from marketplace.presence.secrets import TokenUnreadable, decrypt_token, encrypt_token
from marketplace.projects.models import ProjectMaintainer
from marketplace.tasks import enqueue
from marketplace.timeutil import utcnow
from marketplace.validation import http_url

LABEL = "bounty"
REFRESH_JOB = "jobs.presence.refresh_item"
REPLY_JOB = "jobs.presence.reply_unlinked"
_MARKER = "<!-- backlog-commons:{kind}:{id}:{tag} -->"
MAX_TOKEN = 255


class PresenceError(DomainError):
    """The living comment cannot be turned on as asked; the message is for the maintainer."""


def marker(item_id: int, kind: str = "item") -> str:
    """The hidden line that marks our comment on an issue (``kind`` item, or reply:<command id>).

    It ends with a tag keyed by the site's ``SECRET_KEY`` (HMAC-SHA256, 16 hex
    digits): a commenter who writes ``<!-- backlog-commons:item:42 -->`` in their
    own comment before ours exists cannot make the job adopt (and overwrite, or
    fail on) their comment instead of posting ours."""
    key = str(current_app.config.get("SECRET_KEY") or "").encode()
    tag = hmac.new(key, f"{kind}:{item_id}".encode(), hashlib.sha256).hexdigest()[:16]
    return _MARKER.format(kind=kind, id=item_id, tag=tag)


# --- turning it on and off ------------------------------------------------------------------------

def set_presence(repo: Repository, on: bool, *, actor: User, gitlab_token: str | None = None) -> RepositoryPresence:
    """Turn the living comment and label on (``on``) or off for ``repo``; flushes.

    GitHub writes go through the GitHub App installation of the repository:
    turning on needs one (``repo.installation_id``), unless the operator set
    ``GITHUB_TOKEN`` for the commons' own account. GitLab writes need a
    project access token (scope ``api``, role Reporter or more), stored
    encrypted; a new token replaces the stored one. Turning on queues a
    refresh of the repository's funded items; turning off stops every write
    at once (the jobs read it before each write). Raises :class:`PresenceError`.
    """
    row = presence_of(repo.id)
    if row is None:
        row = RepositoryPresence(repository_id=repo.id, enabled=False)
        db.session.add(row)
    token = (gitlab_token or "").strip()
    if token:
        if repo.forge is not ForgeKind.gitlab:
            raise PresenceError(_("A token is only needed for a GitLab project."))
        if len(token) > MAX_TOKEN or not token.isprintable() or " " in token:
            raise PresenceError(_("This does not look like a GitLab access token."))
        row.gitlab_token_encrypted = encrypt_token(token)
    if on:
        if repo.forge is ForgeKind.github and not repo.installation_id and not current_app.config.get("GITHUB_TOKEN"):
            raise PresenceError(_("Install the commons' GitHub App on this repository first."))
        if repo.forge is ForgeKind.gitlab and not row.gitlab_token_encrypted:
            raise PresenceError(_("Give a project access token of this GitLab project."))
    row.enabled = on
    row.changed_by_id = actor.id
    row.changed_at = utcnow()
    db.session.flush()
    audit.record("forge_presence.enabled" if on else "forge_presence.disabled", "repository", repo.id,
                 actor=f"user:{actor.id}", actor_user_id=actor.id, details={"token_replaced": bool(token)})
    if on:
        for item_id in funded_item_ids(repo.id):
            queue_refresh(item_id)
    return row


def funded_item_ids(repository_id: int) -> list[int]:
    """Items of the repository with money held now, or with a living comment already."""
    held = select(ItemFunding.item_id).where(ItemFunding.held_minor > 0)
    known = select(ItemPresence.item_id)
    return list(db.session.scalars(select(BacklogItem.id).where(
        BacklogItem.repository_id == repository_id,
        or_(BacklogItem.id.in_(held), BacklogItem.id.in_(known))).order_by(BacklogItem.id)))


def queue_refresh(item_id: int, at: datetime | None = None) -> None:
    """Queue ``jobs.presence.refresh_item`` for ``item_id`` after the current commit (at ``at``, naive UTC)."""
    enqueue(REFRESH_JOB, item_id, at=at)


def writer_for(repo: Repository, setting: RepositoryPresence):
    """The forge client that writes for ``repo``: the App installation's token on
    GitHub (:func:`~marketplace.forges.clients.client_for`), the stored project
    access token on GitLab. Raises :class:`~marketplace.presence.secrets.TokenUnreadable`."""
    if repo.forge is ForgeKind.gitlab:
        return GitLabClient(gitlab_api_url(repo.host), decrypt_token(setting.gitlab_token_encrypted))
    return client_for(repo)


# --- the comment ----------------------------------------------------------------------------------

_STATUS = {
    "open": "Open: nobody holds a claim yet.",
    "claimed": "Claimed by {who}: the work is in progress.",
    "solved": "Solved: the payout goes out once a maintainer approves it.",
    "paid": "Paid: {paid} went to the implementors. Thank you!",
    "closed": "Closed without the work done: the money goes back to its funders.",
}


def comment_body(item: BacklogItem, state: BountyState, note: str | None) -> str:
    """The Markdown of ``item``'s living comment for ``state`` (English: the forge's
    readers are many, and the page it links to speaks their language)."""
    link = url_for_public("backlog.item", item_id=item.id)
    badge = url_for_public("presence.item_badge", item_id=item.id)
    account = url_for_public("accounts.settings")
    amount = money_list(state.held) if state.held else "nothing held now"
    status = _STATUS[state.state].format(who=", ".join(state.claimants) or "an implementor",
                                         paid=money_list(state.paid))
    forge = "GitLab" if item.repository.forge is ForgeKind.gitlab else "GitHub"
    lines = [
        marker(item.id),
        f"[![bounty]({badge})]({link})",
        "",
        f"**Bounty on Backlog Commons:** {amount}",
        "",
        status,
        "",
    ]
    if state.state in ("open", "claimed"):
        lines += [
            f"To work on it, link your {forge} account to your Backlog Commons account ({account}), then "
            "comment `/claim` with your plan and, if you like, a deadline (`/claim 2027-01-31 my plan`), "
            f"or ask on [the item's page]({link}). `/unclaim` withdraws your claim.",
            "",
        ]
    if note:
        lines += [f"Latest command: {note}", ""]
    lines.append("<sub>Backlog Commons keeps this comment up to date: it is edited, never posted again.</sub>")
    return "\n".join(lines)


def state_key(body: str, label: bool) -> str:
    """The state version a comment text and label stand for: a digest of both."""
    return hashlib.sha256(f"{label}\n{body}".encode()).hexdigest()[:32]


def _record(item_id: int, action: str, key: str | None, comment_id: int | None = None,
            outcome: str | None = None) -> None:
    db.session.add(ForgeWrite(item_id=item_id, action=action, state_key=key, comment_id=comment_id,
                              outcome=(outcome or None) and outcome[:2000]))
    db.session.flush()


def _locked_row(item_id: int) -> ItemPresence:
    """The item's living-comment row, made when missing, under a row lock (one writer per item)."""
    row = db.session.scalar(select(ItemPresence).where(ItemPresence.item_id == item_id).with_for_update())
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            db.session.add(ItemPresence(item_id=item_id, label_applied=False, reposts=0))
    except IntegrityError:
        pass  # a racing job made it
    return db.session.scalar(select(ItemPresence).where(ItemPresence.item_id == item_id).with_for_update())


def _still_on(repository_id: int) -> bool:
    setting = presence_of(repository_id)
    if setting is not None:
        db.session.refresh(setting)
    return setting is not None and setting.enabled


def comment_url(item: BacklogItem, comment_id: int, given: object = None) -> str:
    """The web address of comment ``comment_id`` on ``item``'s issue: ``given``
    (what the forge answered, GitHub's ``html_url``) when it is an http(s)
    address on the issue's own page (the issue's address + ``#…``), else built
    from the issue's address as the forge builds it — GitLab: the issue's
    ``web_url`` + ``#note_<id>`` (GitLab's "Notes" API answers none); GitHub:
    ``html_url`` + ``#issuecomment-<id>``. A forge's answer is not trusted to
    point elsewhere: another host, another repository or ``javascript:`` would
    be the item page's link. At most 2,000 characters."""
    page = item.html_url.split("#", 1)[0]
    if isinstance(given, str) and http_url(given) == given and given.startswith(page + "#"):
        return given[:2000]
    anchor = "note_" if item.repository.forge == ForgeKind.gitlab else "issuecomment-"
    return f"{page}#{anchor}{comment_id}"[:2000]


def _find_marked(client, repo: Repository, number: int, mark: str) -> int | None:
    """The id of a comment on the issue that carries ``mark`` (ours, its id lost), or None."""
    for comment_id, body in client.list_comments(repo, number):
        if mark in body:
            return comment_id
    return None


def refresh_item(item_id: int, now: datetime | None = None) -> str:
    """Bring ``item``'s living comment and label to its current state; returns
    what happened (``off``, ``current``, ``written``, ``not funded``,
    ``waiting``, ``rate limited``, ``abandoned``, ``failed``…). Commits after
    each forge write (see the module's docstring). Raises
    :class:`~marketplace.forges.http.ForgeError` for an outage (the job's
    retries try again: the marker makes that safe)."""
    now = now or utcnow()
    item = db.session.get(BacklogItem, item_id)
    if item is None:
        return "gone"
    repo = item.repository
    setting = presence_of(repo.id)
    if setting is None or not setting.enabled:
        return "off"
    state = bounty_state(item)
    if not state.funded and db.session.scalar(select(ItemPresence.id).where(ItemPresence.item_id == item.id)) is None:
        return "not funded"
    row = _locked_row(item.id)
    if row.abandoned_at is not None:
        return "abandoned"
    if row.resume_at is not None and row.resume_at > now:
        return "waiting"
    # The state read before the lock may be older than what a job that held the
    # lock meanwhile wrote: read it again under the lock, so that a slow job never
    # writes an older state over a newer one.
    db.session.expire_all()  # the item, its funding and claims as committed now (the lock stays held)
    state = bounty_state(item)
    if not (state.funded or row.comment_id or row.written_key or row.command_note):
        return "not funded"
    want_label = bool(state.held) and state.state not in ("paid", "closed")
    body = comment_body(item, state, row.command_note)
    key = state_key(body, want_label)
    if row.comment_id and row.written_key == key and row.label_applied == want_label:
        return "current"
    try:
        client = writer_for(repo, setting)
    except RateLimited as exc:  # buying the installation token was rate-limited
        return _wait(item.id, key, exc)
    except (ForgeError, TokenUnreadable) as exc:
        # The App lost the installation, or the stored GitLab token cannot be read: a maintainer acts.
        return _failed(item.id, key, exc)
    try:
        if not row.comment_id or row.written_key != key:
            _write_comment(client, repo, item, row, body, key, now)
            db.session.commit()
            row = _locked_row(item.id)
            if row.abandoned_at is not None:
                return "abandoned"
        if row.label_applied != want_label:
            if not _still_on(repo.id):
                return "off"
            client.set_label(repo, item.number, LABEL, want_label)
            row.label_applied = want_label
            _record(item.id, "add_label" if want_label else "remove_label", key)
        row.written_key = key
        row.resume_at = None
        row.last_error = None
        db.session.commit()
        return "written"
    except RateLimited as exc:
        return _wait(item.id, key, exc)
    except _Off:
        db.session.rollback()
        return "off"
    except (Forbidden, NotFound) as exc:
        # No permission (the App lost access, the token was revoked), or the issue is gone.
        return _failed(item.id, key, exc)
    except Unavailable:
        raise  # an outage: the job's retries try again
    except ForgeError as exc:
        # Any other refusal (410 Gone: the issue was deleted or issues turned off; 422) is for
        # good: retrying would ask the same again. Recorded for the maintainers, like a 403.
        return _failed(item.id, key, exc)
    finally:
        client.close()


def _wait(item_id: int, key: str, exc: RateLimited) -> str:
    """Record a rate limit and queue the item again at the forge's reset time; commits."""
    db.session.rollback()
    row = _locked_row(item_id)
    row.resume_at = exc.resume_at
    row.last_error = str(exc)[:2000]
    _record(item_id, "rate_limited", key, outcome=str(exc))
    queue_refresh(item_id, at=exc.resume_at)
    db.session.commit()
    return "rate limited"


def _failed(item_id: int, key: str, exc: Exception) -> str:
    """Record a write the forge refused for good (shown to the maintainers); commits."""
    db.session.rollback()
    row = _locked_row(item_id)
    row.last_error = str(exc)[:2000]
    _record(item_id, "failed", key, outcome=str(exc))
    db.session.commit()
    return "failed"


def _write_comment(client, repo: Repository, item: BacklogItem, row: ItemPresence, body: str, key: str,
                   now: datetime) -> None:
    """Post, adopt or edit the comment so that it shows ``body``; flushes."""
    if not _still_on(repo.id):
        raise _Off()
    if row.comment_id is None:
        found = _find_marked(client, repo, item.number, marker(item.id))
        if found is None:
            comment_id, url = client.post_comment(repo, item.number, body)
            row.comment_id, row.comment_url, row.written_key = comment_id, comment_url(item, comment_id, url), key
            _record(item.id, "post_comment", key, comment_id)
            return
        row.comment_id, row.comment_url = found, comment_url(item, found)
        _record(item.id, "adopt_comment", key, found, "found our marked comment: its id had not been stored")
    try:
        client.edit_comment(repo, item.number, row.comment_id, body)
        _record(item.id, "edit_comment", key, row.comment_id)
    except NotFound:
        _record(item.id, "comment_deleted", key, row.comment_id, "the comment is gone: a person deleted it")
        found = _find_marked(client, repo, item.number, marker(item.id))
        if found is not None:  # a repost whose id was lost
            row.comment_id, row.comment_url = found, comment_url(item, found)
            client.edit_comment(repo, item.number, found, body)
            _record(item.id, "adopt_comment", key, found)
        elif row.reposts >= 1:
            row.abandoned_at = now
            row.comment_id = row.comment_url = None
            _record(item.id, "abandoned", key, None, "deleted twice by a person: not posted again")
            tell_project_deleted(item)
            return
        else:
            row.reposts += 1
            comment_id, url = client.post_comment(repo, item.number, body)
            row.comment_id, row.comment_url = comment_id, comment_url(item, comment_id, url)
            _record(item.id, "repost_comment", key, comment_id)
    row.written_key = key


class _Off(Exception):
    """The repository was turned off while the job ran."""


def tell_project_deleted(item: BacklogItem) -> int:
    """E-mail the project's maintainers that the item's comment was deleted twice
    and is no longer posted; returns how many were told. Audited."""
    maintainers = db.session.scalars(select(User).join(ProjectMaintainer, ProjectMaintainer.user_id == User.id)
                                     .where(ProjectMaintainer.project_id == item.repository.project_id,
                                            User.email_verified_at.is_not(None)).order_by(User.id)).all()
    link = url_for_public("presence.settings", slug=item.repository.project.slug)
    for person in maintainers:
        subject, text = render("forge_comment_deleted",
                               recipient_language(person.preferred_language, person.last_language),
                               item=item, link=link, item_link=url_for_public("backlog.item", item_id=item.id))
        queue_mail(person.email, subject, text)
    audit.record("forge_presence.comment_abandoned", "backlog_item", item.id, actor="job:presence",
                 details={"told": len(maintainers)})
    return len(maintainers)


def abandoned_items(project_id: int) -> list[BacklogItem]:
    """The project's items whose living comment was deleted twice (shown on the settings page)."""
    return list(db.session.scalars(
        select(BacklogItem).join(ItemPresence, ItemPresence.item_id == BacklogItem.id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(Repository.project_id == project_id, ItemPresence.abandoned_at.is_not(None))
        .order_by(BacklogItem.id)))


def forget_abandon(item: BacklogItem, *, actor: User) -> None:
    """A maintainer asks for the comment again on an item where it was deleted twice; flushes."""
    row = db.session.scalar(select(ItemPresence).where(ItemPresence.item_id == item.id))
    if row is not None and row.abandoned_at is not None:
        row.abandoned_at, row.reposts, row.written_key, row.comment_id, row.comment_url = None, 0, None, None, None
        db.session.flush()
        audit.record("forge_presence.comment_restored", "backlog_item", item.id, actor=f"user:{actor.id}",
                     actor_user_id=actor.id)
        queue_refresh(item.id)


# --- replies to unlinked commenters, and the cron pass ---------------------------------------------

def reply_body(command: ForgeCommand, forge: str) -> str:
    """The one reply to a commenter with no linked account (English)."""
    who = f"@{command.author_login}" if command.author_login else "Hello"
    return "\n".join([
        marker(command.id, "reply"),
        f"{who}, your `/{command.command}` could not be applied: your {forge} account is not linked to a "
        "Backlog Commons account yet.",
        "",
        f"Sign in (or sign up) at {url_for_public('accounts.settings')}, connect your {forge} account there, "
        "then comment the command again.",
    ])


def reply_unlinked(command_id: int) -> str:
    """Post the reply of an ``unlinked`` command once (marker-checked, so a retry
    never posts twice); returns ``posted``, ``done``, ``off`` or ``rate limited``.
    Commits like :func:`refresh_item`."""
    command = db.session.scalar(select(ForgeCommand).where(ForgeCommand.id == command_id).with_for_update())
    if command is None or command.outcome != "unlinked" or command.reply_comment_id is not None:
        return "done"
    item = db.session.get(BacklogItem, command.item_id)
    repo = item.repository
    setting = presence_of(repo.id)
    if setting is None or not setting.enabled:
        return "off"
    client = writer_for(repo, setting)
    forge = "GitLab" if repo.forge is ForgeKind.gitlab else "GitHub"
    try:
        mark = marker(command.id, "reply")
        found = _find_marked(client, repo, item.number, mark)
        if found is None:
            found, _url = client.post_comment(repo, item.number, reply_body(command, forge))
            _record(item.id, "reply", None, found, f"told {command.author_login} how to link their account")
        command.reply_comment_id = found
        db.session.commit()
        return "posted"
    except RateLimited as exc:
        db.session.rollback()
        _record(item.id, "rate_limited", None, outcome=f"reply to command {command_id}: {exc}")
        enqueue(REPLY_JOB, command_id, at=exc.resume_at)
        db.session.commit()
        return "rate limited"
    finally:
        client.close()


REPLY_WINDOW = timedelta(days=7)


def resume_due(now: datetime | None = None) -> int:
    """Cron: queue the items whose rate-limit wait is over, and the replies still
    owed (younger than a week); returns the count queued."""
    now = now or utcnow()
    items = db.session.scalars(select(ItemPresence.item_id).where(
        ItemPresence.resume_at.is_not(None), ItemPresence.resume_at <= now,
        ItemPresence.abandoned_at.is_(None))).all()
    for item_id in items:
        row = db.session.scalar(select(ItemPresence).where(ItemPresence.item_id == item_id))
        row.resume_at = None
        queue_refresh(item_id)
    replies = db.session.scalars(select(ForgeCommand.id).where(
        ForgeCommand.outcome == "unlinked", ForgeCommand.reply_comment_id.is_(None),
        ForgeCommand.created_at >= now - REPLY_WINDOW)).all()
    for command_id in replies:
        enqueue(REPLY_JOB, command_id)
    db.session.flush()
    return len(items) + len(replies)


_COMMAND_NOTE = re.compile(r"\s+")


def set_command_note(item_id: int, note: str) -> None:
    """Keep ``note`` (one line) as the answer the living comment shows to the latest command; flushes."""
    row = db.session.scalar(select(ItemPresence).where(ItemPresence.item_id == item_id))
    if row is None:
        row = ItemPresence(item_id=item_id, label_applied=False, reposts=0)
        db.session.add(row)
    row.command_note = _COMMAND_NOTE.sub(" ", note).strip()[:1000]
    db.session.flush()
