"""Upserting forge issues and pull requests into the backlog.

The one path by which forge data enters the backlog: the snapshot loader uses
it now, live sync and webhooks later. Services flush, never commit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text

from marketplace.audit import service as audit
from marketplace.backlog import close_reasons, ending
from marketplace.backlog.links import find_references
from marketplace.backlog.models import (
    BacklogItem,
    ItemAlias,
    ItemLabel,
    ItemLink,
    ItemLinkKind,
    ItemState,
    LinkSource,
    PullRequest,
    PullRequestState,
)
from marketplace.backlog.queries import find_item
from marketplace.claims.service import on_links
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.forges.service import find_repository
from marketplace.forges.types import ForgeIssue, ForgePullRequest
from marketplace.payouts import service as payouts
from marketplace.timeutil import utcnow

_ISSUE_FIELDS = {
    "number": "number",
    "title": "title",
    "body": "body",
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


def lock_forge_object(kind: str, host: str, key) -> None:
    """Serialise writers of one forge object until the transaction ends.

    A PostgreSQL advisory transaction lock on ``kind:host:key`` (an issue's
    numeric forge id; a pull request's repository id and number). Unlike a row
    lock it also covers the row that does not exist yet, so two workers
    creating the same item cannot both insert. Taken before the staleness
    check, so the check reads what the other worker committed. Reentrant in
    one transaction. SQLite serialises writers itself: nothing to do there.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                       {"key": f"{kind}:{host}:{key}"})


def _forge_fields_differ(item: BacklogItem, issue: ForgeIssue) -> bool:
    """Whether ``issue`` says anything other than what ``item`` holds: the
    forge fields, and what decides money and publication (the close reason
    and its target, GitLab's confidential flag)."""
    if item.state.value != issue.state or sorted(item.label_names) != sorted(issue.labels):
        return True
    state_reason, target = close_reasons.read_forge_close(item.repository.forge.value, issue)
    if item.state_reason != state_reason or (target is not None and item.close_target_forge_id != target):
        return True
    if issue.confidential != (item.private_reason == "confidential"):
        return True
    return any(getattr(item, column) != getattr(issue, attr) for column, attr in _ISSUE_FIELDS.items())


def _closed_on_the_forge_at(item: BacklogItem) -> datetime | None:
    """When the forge last said the work on ``item`` was done, or None: the
    close it reported, or the merge of a change whose closing keyword made the
    forge close the issue at that moment (a link made by hand closes nothing
    on the forge, so the issue staying open after it says nothing)."""
    moments = []
    if item.state is ItemState.closed and item.forge_closed_at is not None:
        moments.append(item.forge_closed_at)
    solver = item.solved_by
    if solver is not None and solver.merged_at is not None and _closes_by_keyword(item, solver):
        moments.append(solver.merged_at)
    return max(moments) if moments else None


def _closes_by_keyword(item: BacklogItem, pull: PullRequest) -> bool:
    """``pull`` links ``item`` by a closing keyword (so the forge closed the issue at its merge)."""
    return db.session.scalar(select(ItemLink.id).where(
        ItemLink.item_id == item.id, ItemLink.pull_request_id == pull.id,
        ItemLink.source == LinkSource.keyword, ItemLink.removed.is_(False)).limit(1)) is not None


def upsert_issue(repo: Repository, issue: ForgeIssue, *, reread: Callable[[], ForgeIssue | None] | None = None,
                 effects: bool = True) -> UpsertResult:
    """Create or update the backlog item of ``issue`` in ``repo``.

    Matched by (forge host, forge id), under a lock on that identity taken
    before anything is read (:func:`lock_forge_object` and the row), so two
    workers with two events of one issue apply them one after the other and
    the newer one stays. An update older than the stored ``forge_updated_at``
    is ignored (``stale``): forges and webhooks deliver out of order. An
    update with the *same* ``updated_at`` but other content (GitHub's
    timestamps have 1-second resolution: a close and a reopen in one second)
    is not decided by arrival order: ``reread()`` fetches the issue from the
    forge's API and that answer is applied (without ``reread``, e.g. in sync,
    ``issue`` is itself the API's answer). Commons fields (priority, funding
    goal) are never touched; what follows from the new
    state (privacy, payouts, claims, refund offers) is
    :func:`marketplace.backlog.ending.after_forge_change`.

    Effects on money follow from what the event says and when
    (:func:`marketplace.backlog.ending.after_forge_change`), not from the stored row alone. A newly
    created item takes the links that merged pull requests made to it before
    it existed (:func:`_attach_waiting_links`). ``effects=False`` writes the
    forge's fields only (the issue as it was when deleted, which then ends:
    its close must not propose a payout first).
    """
    lock_forge_object("issue", repo.host, issue.forge_id)
    item = find_item(repo.host, issue.forge_id, lock=True)
    created = item is None
    if item is not None and item.deleted_at is not None:
        # Deleted on the forge: a late event of the issue does not bring it back.
        return UpsertResult("stale", item)
    if created:
        item = BacklogItem(repository=repo, forge_host=repo.host, forge_id=issue.forge_id)
        db.session.add(item)
    elif item.forge_id != issue.forge_id:
        # Found by a former identity (the issue was transferred): its events are history.
        return UpsertResult("stale", item)
    elif item.forge_updated_at > issue.updated_at:
        return UpsertResult("stale", item)
    elif item.forge_updated_at == issue.updated_at and reread is not None and _forge_fields_differ(item, issue):
        fresh = reread()
        if fresh is None or fresh.forge_id != issue.forge_id or fresh.updated_at < item.forge_updated_at:
            return UpsertResult("stale", item)
        issue = fresh

    was_state = None if created else item.state
    done_at = None if created else _closed_on_the_forge_at(item)
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
    was_reason = None if created else item.close_reason
    state_reason, target_forge_id = close_reasons.read_forge_close(repo.forge.value, issue)
    if item.state_reason != state_reason:
        item.state_reason = state_reason
        changed = True
    if target_forge_id is not None and item.close_target_forge_id != target_forge_id:
        item.close_target_forge_id = target_forge_id
        changed = True
    if item.state != state:
        item.state = state
        changed = True
        if state is ItemState.open:
            # A maintainer's decision was on that close: the next close is decided anew.
            item.close_decision = None
    if sorted(item.label_names) != sorted(issue.labels):
        item.labels = [ItemLabel(name=name) for name in issue.labels]
        changed = True
    if changed:
        item.synced_at = utcnow()
    db.session.flush()
    if not effects:
        return UpsertResult("created" if created else "updated" if changed else "unchanged", item)
    if created:
        _attach_waiting_links(item)
    ending.after_forge_change(item, created=created, was_state=was_state, was_reason=was_reason,
                              private_reason=ending.private_reason_for(issue.confidential, repo.visibility),
                              when=issue.updated_at, done_at=done_at, actor="sync")
    return UpsertResult("created" if created else "updated" if changed else "unchanged", item)


def _attach_waiting_links(item: BacklogItem) -> None:
    """Links written before ``item`` existed (a pull request merged before its
    issue reached us) point at its repository path and number with no item:
    give them the item, then decide whether it is solved.

    The repository's current path counts, and a former path only while no
    live repository holds it (a new repository with the old name owns it).
    """
    repo = item.repository
    paths = {repo.path_key}
    for alias in repo.aliases:
        if db.session.scalar(select(Repository.id).where(
                Repository.host == repo.host, Repository.path_key == alias.path_key)) is None:
            paths.add(alias.path_key)
    links = db.session.scalars(select(ItemLink).where(
        ItemLink.item_id.is_(None), ItemLink.target_host == item.forge_host,
        func.lower(ItemLink.target_path).in_(paths), ItemLink.target_number == item.number)).all()
    if not links:
        return
    for link in links:
        link.item = item
    db.session.flush()
    update_solved(item)


def upsert_pull_request(repo: Repository, pull: ForgePullRequest) -> UpsertResult:
    """Create or update the pull/merge request ``pull`` of ``repo``.

    Matched by (repository, number), under a lock on that identity taken
    before the staleness check (as for issues). Fields the source does not carry (the pull
    request id, base branch, fork) keep their stored values. A merged request
    never goes back to open or closed: merging is final on every forge.
    """
    lock_forge_object("pull", repo.host, f"{repo.id}:{pull.number}")
    row = db.session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repo.id, PullRequest.number == pull.number
        ).with_for_update().execution_options(populate_existing=True)
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
    if row.author_deleted != pull.author_deleted:
        row.author_deleted = pull.author_deleted
        changed = True
    undeleted = row.deleted_at is not None
    if undeleted:
        # Listed by the forge again: the earlier "gone" was wrong.
        row.deleted_at = None
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
    if undeleted:
        for link in row.links:
            if link.item is not None:
                update_solved(link.item)
    return UpsertResult("created" if created else "updated" if changed else "unchanged", row)


def transfer_item(
    old_repo: Repository | None, old_forge_id: int, new_repo: Repository | None, new_issue: ForgeIssue, *, actor: str,
    old_number: int | None = None, old_url: str | None = None,
) -> BacklogItem | None:
    """Follow an issue transferred to ``new_issue`` (new id, number, repository).

    GitHub gives the transferred issue a new id and number; the ``opened``
    event of the new issue may arrive before or after ``transferred``. Either
    way one item remains: the older row (pledges and claims point at it) takes
    the new identity, keeps the old one as an :class:`ItemAlias`, and a row
    created for the new issue in the meantime is merged into it. Returns the
    item, or None when neither identity is known and the new repository is not
    in the commons. When only the new issue is known, the old identity
    (``old_number``, ``old_url``) becomes its alias, so that a late event of
    the old issue finds the item and is stale instead of making a second one.
    """
    host = (new_repo or old_repo).host if (new_repo or old_repo) else None
    identities = {(old_repo.host, old_forge_id)} if old_repo else set()
    if host:
        identities.add((host, new_issue.forge_id))
    for identity in sorted(identities):  # one order for every worker: no deadlock
        lock_forge_object("issue", *identity)
    old = find_item(old_repo.host, old_forge_id, lock=True) if old_repo else None
    new = find_item(host, new_issue.forge_id, lock=True) if host else None
    if old is None:
        if new is None and new_repo is None:
            return None
        if new_repo is not None:
            new = upsert_issue(new_repo, new_issue).row
        if old_repo is not None and old_number is not None and old_forge_id != new.forge_id \
                and find_item_alias(old_repo.host, old_forge_id) is None:
            new.aliases.append(ItemAlias(forge_host=old_repo.host, forge_id=old_forge_id,
                                         repository_full_name=old_repo.full_name, number=old_number,
                                         html_url=old_url))
            db.session.flush()
        return new
    if old is new:
        if new_repo is not None:
            upsert_issue(new_repo, new_issue)
        return new
    deleted_at = None
    if new is not None:
        # The new issue arrived first and got its own row: fold it into the old one.
        # If the forge already deleted the new issue (its "deleted" came before
        # this "transferred"), the item ends deleted, as in the natural order.
        deleted_at = new.deleted_at
        for link in db.session.scalars(select(ItemLink).where(ItemLink.item_id == new.id)):
            link.item_id = old.id
        db.session.delete(new)
        db.session.flush()
    if old.forge_id != new_issue.forge_id and find_item_alias(old.forge_host, old.forge_id) is None:
        old.aliases.append(
            ItemAlias(
                forge_host=old.forge_host,
                forge_id=old.forge_id,
                repository_full_name=old.repository.full_name,
                number=old.number,
                html_url=old.html_url,
            )
        )
    if new_repo is None:
        # Moved out of the commons: keep the row, hidden, at its old identity.
        old.hidden = True
        db.session.flush()
        return old
    old.forge_id = new_issue.forge_id
    old.repository = new_repo
    old.forge_host = new_repo.host
    old.number = new_issue.number
    old.forge_updated_at = min(old.forge_updated_at, new_issue.updated_at)
    db.session.flush()
    upsert_issue(new_repo, new_issue)
    audit.record("item.transferred", "backlog_item", old.id, actor=actor,
                 details={"to": f"{new_repo.full_name}#{new_issue.number}", "forge_id": new_issue.forge_id})
    if deleted_at is not None:
        mark_item_deleted(new_repo, new_issue.forge_id, deleted_at, actor=actor)
    return old


def find_item_alias(host: str, forge_id: int) -> ItemAlias | None:
    return db.session.scalar(
        select(ItemAlias).where(ItemAlias.forge_host == host, ItemAlias.forge_id == forge_id)
    )


def mark_item_deleted(repo: Repository, forge_id: int, when, *, actor: str) -> BacklogItem | None:
    """The forge deleted the issue: the item ends (:func:`marketplace.backlog.ending.end_item`:
    hidden, claims and open payouts cancelled, held pledges refunded at once)."""
    item = find_item(repo.host, forge_id)
    if item is None or item.deleted_at is not None:
        return item
    ending.end_item(item, when, actor=actor)
    return item


def _split_path(path: str) -> tuple[str, str]:
    owner, _, name = path.rpartition("/")
    return owner, name


def refresh_links(pull: PullRequest) -> list[BacklogItem]:
    """Recompute the keyword links of ``pull`` from its title and body.

    Classification (``ItemLinkKind``): a closing reference to this member
    project's issue is ``closes``; to another repository outside the project
    ``cross_project``; anything else, or any reference while the pull request
    does not target the repository's default branch, a ``mention``. Manual
    links and manual removals are kept. Once the request is merged (and its
    base branch known) the links are read one last time and frozen: GitHub
    and GitLab close issues at merge time, and editing the text afterwards
    closes or reopens nothing. Each referenced item is locked (FOR UPDATE)
    and re-read before it is linked, so a deletion committed meanwhile by
    another worker leaves it unlinked and unsolved. Returns the items whose
    solved state may have changed (already updated).
    """
    repo = pull.repository
    if pull.links_frozen_at is not None:
        return []
    honoured = bool(repo.default_branch) and pull.base_branch == repo.default_branch
    wanted: dict[tuple[str, str, int], tuple[ItemLinkKind, BacklogItem | None]] = {}
    text = f"{pull.title}\n{pull.body or ''}"
    for ref in find_references(text, repo.forge.value):
        host = ref.host or repo.host
        path = ref.path or repo.full_name
        target_repo = find_repository(host, *_split_path(path)) if "/" in path else None
        item = None
        if target_repo is not None:
            item = db.session.scalar(
                select(BacklogItem).where(
                    BacklogItem.repository_id == target_repo.id, BacklogItem.number == ref.number
                )
            ) or _item_transferred_from(target_repo, ref.number)
            path = target_repo.full_name
        if item is not None:
            # Locked and re-read before deciding: a deletion being applied by
            # another worker at this moment is seen once it commits, and then
            # nothing attaches to the item (not a link, not a solver).
            item = db.session.get(BacklogItem, item.id, with_for_update=True, populate_existing=True)
        if item is not None and item.deleted_at is not None:
            item = None  # deleted on the forge: nothing attaches to it any more
        if not (ref.closing and honoured):
            kind = ItemLinkKind.mention
        elif target_repo is not None and target_repo.project_id == repo.project_id:
            kind = ItemLinkKind.closes
        else:
            kind = ItemLinkKind.cross_project
        wanted[(host, path.lower(), ref.number)] = (kind, item, path)
    touched: set[int] = set()
    existing = {(link.target_host, link.target_path.lower(), link.target_number): link for link in pull.links}
    for key, link in existing.items():
        if link.source is LinkSource.keyword and key not in wanted:
            if link.item_id:
                touched.add(link.item_id)
            pull.links.remove(link)
    for key, (kind, item, path) in wanted.items():
        link = existing.get(key)
        if link is None:
            link = ItemLink(target_host=key[0], target_path=path, target_number=key[2],
                            kind=kind, source=LinkSource.keyword, item=item)
            pull.links.append(link)
        elif link.source is LinkSource.keyword:
            if link.item_id:
                touched.add(link.item_id)
            link.kind, link.item = kind, item
        if item is not None:
            touched.add(item.id)
    if pull.state is PullRequestState.merged and repo.default_branch and pull.base_branch:
        pull.links_frozen_at = utcnow()
    db.session.flush()
    items = [db.session.get(BacklogItem, item_id) for item_id in touched]
    on_links(pull)
    for item in items:
        update_solved(item)
    return items


def _item_transferred_from(repo: Repository, number: int) -> BacklogItem | None:
    """The item that was issue ``number`` of ``repo`` before a transfer moved it
    (a pull request may name the old place, or be read after the transfer)."""
    return db.session.scalar(
        select(BacklogItem).join(ItemAlias, ItemAlias.item_id == BacklogItem.id).where(
            ItemAlias.forge_host == repo.host, func.lower(ItemAlias.repository_full_name) == repo.path_key,
            ItemAlias.number == number).limit(1))


def _reopened_after_merge(item: BacklogItem, solver: PullRequest) -> bool:
    """The forge said the issue was open after ``solver`` merged, although that
    merge closed it (a keyword link): it was reopened, and the merge arrived
    late. The merge then proposes nothing, as in the natural order where the
    reopening cancelled its proposal."""
    if item.state is not ItemState.open or solver.merged_at is None or item.forge_updated_at <= solver.merged_at:
        return False
    return _closes_by_keyword(item, solver)


def update_solved(item: BacklogItem) -> None:
    """Set ``item.solved_by`` to the first merged pull request that closes it, or None.

    Only ``closes`` links that are not removed count, from pull requests that
    are merged and not deleted; a pull request closed without merging never
    solves, and an item deleted on the forge is never solved again.
    """
    if item.deleted_at is not None:
        return
    solver = db.session.scalar(
        select(PullRequest)
        .join(ItemLink, ItemLink.pull_request_id == PullRequest.id)
        .where(
            ItemLink.item_id == item.id,
            ItemLink.kind == ItemLinkKind.closes,
            ItemLink.removed.is_(False),
            PullRequest.state == PullRequestState.merged,
            PullRequest.deleted_at.is_(None),
        )
        .order_by(PullRequest.merged_at, PullRequest.id)
        .limit(1)
    )
    if item.solved_by_id != (solver.id if solver else None):
        item.solved_by = solver
        db.session.flush()
        if solver is not None and not _reopened_after_merge(item, solver):
            payouts.on_solved(item)


def link_by_hand(pull: PullRequest, item: BacklogItem, *, actor: str) -> ItemLink:
    """A maintainer links ``pull`` to ``item`` as closing it (manual, survives sync).

    Raises ``ValueError`` for an item deleted on the forge (nothing attaches to it).
    """
    if item.deleted_at is not None:
        raise ValueError("the item was deleted on the forge")
    target = item.repository
    key = (item.forge_host, target.full_name.lower(), item.number)
    link = next((known for known in pull.links
                 if (known.target_host, known.target_path.lower(), known.target_number) == key), None)
    if link is None:
        link = ItemLink(target_host=item.forge_host, target_path=target.full_name, target_number=item.number,
                        item=item, kind=ItemLinkKind.closes, source=LinkSource.manual, created_by=actor)
        pull.links.append(link)
    link.kind, link.source, link.removed, link.item = ItemLinkKind.closes, LinkSource.manual, False, item
    db.session.flush()
    update_solved(item)
    audit.record("link.added", "item_link", link.id, actor=actor,
                 details={"pull_request": pull.id, "item": item.id})
    return link


def unlink_by_hand(link: ItemLink, *, actor: str) -> None:
    """A maintainer removes a link; sync will not bring a keyword link back."""
    link.removed = True
    link.source = LinkSource.manual
    db.session.flush()
    if link.item is not None:
        update_solved(link.item)
    audit.record("link.removed", "item_link", link.id, actor=actor)
