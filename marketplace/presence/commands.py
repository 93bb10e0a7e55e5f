"""``/claim`` and ``/unclaim`` typed in issue comments (GitHub ``issue_comment``,
GitLab ``Note Hook`` deliveries), run as the site's own claim form would.

A command counts only on a line of its own, outside fenced or indented code
blocks and quotes (``> /claim`` quoted from someone else is not a command).
``/claim [plan] [deadline]`` takes an optional ISO date (``2027-01-31``)
anywhere in its arguments and the rest of the comment as the plan; the
estimate is the days until the deadline, so the site's rules (implementor
role, cap on open claims, deadline within a year, item not solved) decide
exactly as they do for the form. The commenter is their account through the
forge's numeric user id linked by OAuth, never the handle. Each comment runs
at most once: the command is stored unique by the comment's forge id, so an
edit of the comment or a replayed delivery finds it handled.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import ForgeIdentity, User
from marketplace.backlog.models import BacklogItem
from marketplace.claims import service as claims
from marketplace.claims.models import ACTIVE_CLAIM_STATES, Claim
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.presence.models import ForgeCommand
from marketplace.presence.queries import enabled
from marketplace.presence.service import REPLY_JOB, marker, queue_refresh, set_command_note
from marketplace.tasks import enqueue
from marketplace.timeutil import utcnow

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_COMMAND = re.compile(r"^/(claim|unclaim)(?:\s+(.*))?$", re.IGNORECASE)
_DATE = re.compile(r"(?:\bby\s+)?\b(\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)
DEFAULT_DEADLINE_DAYS = 14
DEFAULT_PLAN = "Claimed from the forge with /claim; no plan given yet."


@dataclass(frozen=True)
class Command:
    """A command read from a comment: ``name`` claim or unclaim, ``plan`` text, ``deadline`` when given."""

    name: str
    plan: str
    deadline: date | None
    bad_date: str | None = None


@dataclass(frozen=True)
class CommentEvent:
    """What a delivery says about one issue comment (forge-neutral)."""

    host: str
    issue_forge_id: int | None
    issue_number: int | None
    comment_id: int
    body: str
    author_forge_id: int | None
    author_login: str | None
    by_bot: bool = False


_GITLAB_BOT = re.compile(r"^(?:project|group)_\d+_bot(?:_[0-9a-f]+)?\d*$|^ghost\d*$|^alert-bot$|^support-bot$",
                         re.IGNORECASE)


def is_gitlab_bot(username: str | None) -> bool:
    """Whether a GitLab username is a bot's: a project or group access token's
    (``project_42_bot_1a2b…``) or one of GitLab's own (``support-bot``, ``alert-bot``,
    ``ghost``). GitLab's Note Hook carries no bot flag, unlike GitHub's ``type``."""
    return bool(username) and _GITLAB_BOT.match(username) is not None


def live_lines(body: str) -> list[str]:
    """The comment's lines that may hold a command: stripped, without fenced or
    indented code blocks, without quoted lines and without what HTML comments
    (``<!-- … -->``, which the forge does not show) hold."""
    lines: list[str] = []
    fence: str | None = None
    hidden = False  # inside an HTML comment
    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        opening = _FENCE.match(raw)
        if fence is None:
            raw, hidden = _without_html_comments(raw, hidden)
            if hidden and not raw.strip():
                continue
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not raw.strip()[len(opening.group(1)):].strip():
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if raw.startswith(("    ", "\t")) or raw.lstrip().startswith(">"):
            continue
        lines.append(raw.strip())
    return lines


def _without_html_comments(line: str, hidden: bool) -> tuple[str, bool]:
    """``line`` without the parts inside HTML comments; ``hidden``: a comment is open
    at its start. Returns the visible text and whether a comment is open at its end."""
    kept, rest = [], line
    while rest:
        if hidden:
            end = rest.find("-->")
            if end < 0:
                return "".join(kept), True
            rest, hidden = rest[end + 3:], False
            kept.append(" ")  # what followed a comment is no longer at the line's start
            continue
        start = rest.find("<!--")
        if start < 0:
            kept.append(rest)
            break
        kept.append(rest[:start])
        rest, hidden = rest[start + 4:], True
    return "".join(kept), hidden


def parse_command(body: str) -> Command | None:
    """The first command of a comment, or None. A deadline that is no date
    (``2027-02-30``) is kept in ``bad_date`` for the answer to name it."""
    lines = live_lines(body or "")
    for index, line in enumerate(lines):
        match = _COMMAND.match(line)
        if not match:
            continue
        name = match.group(1).lower()
        # The deadline is read on the command's own line only: a date in the plan's
        # later lines ("the 2024-03-01 release") is plan text, not a deadline.
        args = (match.group(2) or "").strip()
        deadline, bad = None, None
        found = _DATE.search(args)
        if found and name == "claim":
            try:
                deadline = date.fromisoformat(found.group(1))
            except ValueError:
                bad = found.group(1)
            args = (args[:found.start()] + args[found.end():]).strip()
        rest = " ".join([args] + [ln for ln in lines[index + 1:] if ln]).strip()
        return Command(name, re.sub(r"\s+", " ", rest).strip(), deadline, bad)
    return None


def _item_of(repo: Repository, event: CommentEvent) -> BacklogItem | None:
    """The item of the commented issue, in ``repo`` only (a comment elsewhere never counts)."""
    query = select(BacklogItem).where(BacklogItem.repository_id == repo.id)
    if event.issue_forge_id is not None:
        item = db.session.scalar(query.where(BacklogItem.forge_id == event.issue_forge_id))
        if item is not None:
            return item
    if event.issue_number is not None:
        return db.session.scalar(query.where(BacklogItem.number == event.issue_number))
    return None


def handle_comment(repo: Repository, event: CommentEvent, *, delivery_id: int | None = None) -> tuple[bool, str]:
    """Run the command of one issue comment of ``repo``; returns (handled, what happened).

    Not handled (``False``): the repository is not opted in, the comment is
    ours or a bot's, holds no command, is on no item of ``repo``, or its
    command ran already (an edit, a replay). Flushes; the answer shows in the
    living comment (queued after commit), and an unlinked commenter gets one
    reply (``jobs.presence.reply_unlinked``).
    """
    if not enabled(repo.id):
        return False, "forge presence is off for this repository"
    if event.by_bot or marker(0).split(":")[0] in (event.body or ""):
        return False, "a comment of the commons or of a bot"
    command = parse_command(event.body)
    if command is None:
        return False, "no command in the comment"
    item = _item_of(repo, event)
    if item is None:
        return False, "the comment is on no item of this repository"
    try:
        with db.session.begin_nested():
            row = ForgeCommand(host=repo.host, comment_id=event.comment_id, item_id=item.id, command=command.name,
                               author_forge_id=event.author_forge_id, author_login=event.author_login,
                               outcome="pending", delivery_id=delivery_id)
            db.session.add(row)
    except IntegrityError:
        return False, f"the command of comment {event.comment_id} ran already"
    if _superseded(row):
        row.outcome = "superseded"
        row.message = "a later comment of the same commenter on the item ran first"
        set_command_note(item.id, f"{_who(row)}'s `/{command.name}` was not applied: a later comment of theirs "
                                  "on this item came first (to run it now, write it in a new comment).")
        queue_refresh(item.id)
    else:
        _run(row, item, command)
    db.session.flush()
    return True, f"/{command.name} by {event.author_login or event.author_forge_id}: {row.outcome}"


def _superseded(row: ForgeCommand) -> bool:
    """Whether a later comment (a greater forge id: both forges number comments in
    order) of the same commenter on the same item was handled already: deliveries
    arrive in any order, and the latest command stands (``/claim`` then
    ``/unclaim`` delivered in reverse leaves no claim)."""
    if row.author_forge_id is None:
        return False
    return db.session.scalar(select(ForgeCommand.id).where(
        ForgeCommand.host == row.host, ForgeCommand.item_id == row.item_id,
        ForgeCommand.author_forge_id == row.author_forge_id, ForgeCommand.comment_id > row.comment_id,
        ForgeCommand.outcome.not_in(("unlinked", "unlinked_again", "superseded"))).limit(1)) is not None


def _who(row: ForgeCommand) -> str:
    return f"@{row.author_login}" if row.author_login else "a commenter"


def _run(row: ForgeCommand, item: BacklogItem, command: Command) -> None:
    identity = None
    if row.author_forge_id is not None:
        identity = db.session.scalar(select(ForgeIdentity).where(
            ForgeIdentity.host == row.host, ForgeIdentity.forge_user_id == row.author_forge_id))
    if identity is None:
        told = db.session.scalar(select(ForgeCommand.id).where(
            ForgeCommand.item_id == item.id, ForgeCommand.author_forge_id == row.author_forge_id,
            ForgeCommand.outcome == "unlinked", ForgeCommand.id != row.id).limit(1))
        row.outcome = "unlinked_again" if told else "unlinked"
        row.message = "the commenter's forge account is linked to no account here"
        if not told:
            enqueue(REPLY_JOB, row.id)
        return
    user = db.session.get(User, identity.user_id)
    row.user_id = user.id
    if command.name == "claim":
        note = _claim(row, item, user, command)
    else:
        note = _unclaim(row, item, user)
    set_command_note(item.id, note)
    queue_refresh(item.id)


def _claim(row: ForgeCommand, item: BacklogItem, user: User, command: Command) -> str:
    today = utcnow().date()
    if command.bad_date:
        row.outcome, row.message = "refused", f"{command.bad_date} is not a date"
        return f"{_who(row)}'s `/claim` was not applied: {command.bad_date} is not a date (write YYYY-MM-DD)."
    if command.deadline is not None and command.deadline <= today:
        # The form's rule would speak of an estimate the commenter never gave: say what is wrong.
        row.outcome, row.message = "refused", f"the deadline {command.deadline.isoformat()} is not after today"
        return (f"{_who(row)}'s `/claim` was not applied: the deadline {command.deadline.isoformat()} "
                "has passed or is today (give a later date, YYYY-MM-DD).")
    deadline = command.deadline or today + timedelta(
        days=current_app.config.get("FORGE_CLAIM_DEFAULT_DAYS", DEFAULT_DEADLINE_DAYS))
    estimate = min(max((deadline - today).days, 1), 365)
    try:
        with db.session.begin_nested():
            claim = claims.request_claim(item, user, plan=command.plan or DEFAULT_PLAN, estimate_days=estimate,
                                         deadline=deadline)
    except claims.ClaimError as exc:
        row.outcome, row.message = "refused", str(exc)
        return f"{_who(row)}'s `/claim` was not applied: {exc}"
    row.outcome, row.claim_id = "requested", claim.id
    row.message = f"claim {claim.id} requested, deadline {deadline.isoformat()}"
    return (f"{_who(row)} asked to claim this item (deadline {deadline.isoformat()}); "
            "a maintainer of the project decides.")


def _unclaim(row: ForgeCommand, item: BacklogItem, user: User) -> str:
    claim = db.session.scalar(select(Claim).where(
        Claim.item_id == item.id, Claim.claimant_id == user.id, Claim.state.in_(ACTIVE_CLAIM_STATES))
        .order_by(Claim.id.desc()).limit(1))
    if claim is None:
        row.outcome, row.message = "nothing_to_withdraw", "no open claim of the commenter on the item"
        return f"{_who(row)} has no open claim on this item to withdraw."
    try:
        with db.session.begin_nested():
            claims.withdraw(claim, user=user)
    except claims.ClaimError as exc:
        row.outcome, row.message = "refused", str(exc)
        return f"{_who(row)}'s `/unclaim` was not applied: {exc}"
    row.outcome, row.claim_id, row.message = "withdrawn", claim.id, f"claim {claim.id} withdrawn"
    return f"{_who(row)} withdrew their claim; the item is open to others."
