"""Backlog items (forge issues mirrored into the commons) and pull requests.

Forge fields mirror GitHub's issue object (``GET /repos/{owner}/{repo}/issues``)
and GitLab's issue object; commons fields (priority, funding goal, hidden) are
curated by maintainers and never overwritten by sync.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.backlog.close_reasons import CloseReason, close_reason_of, pays
from marketplace.extensions import db
from marketplace.timeutil import utcnow


class ItemState(str, enum.Enum):
    """Forge state of an issue."""

    open = "open"
    closed = "closed"


class PullRequestState(str, enum.Enum):
    """Forge state of a pull/merge request; merged is a closed request that landed."""

    open = "open"
    closed = "closed"  # closed without merging
    merged = "merged"


class BacklogItem(db.Model):
    """One forge issue in the public backlog.

    Unique by (forge host, forge numeric id): the id survives renames and
    transfers of the repository; ``number`` is only unique within a repository.
    """

    __tablename__ = "backlog_item"
    __table_args__ = (
        UniqueConstraint("forge_host", "forge_id", name="uq_backlog_item_forge_host_forge_id"),
        UniqueConstraint("repository_id", "number", name="uq_backlog_item_repository_id_number"),
        CheckConstraint(
            "funding_goal_minor IS NULL OR funding_goal_minor > 0", name="funding_goal_positive"
        ),
        Index("ix_backlog_item_listing", "hidden", "state", "forge_updated_at", "id"),
        Index("ix_backlog_item_created", "forge_created_at", "id"),
        # Issue 15: the default list (open, unsolved, visible, newest update first) and its
        # count read this index alone; the project filter's EXISTS probes the second.
        Index("ix_backlog_item_open", "forge_updated_at", "id",
              postgresql_where=text("hidden IS false AND state = 'open' AND solved_by_id IS NULL"),
              sqlite_where=text("hidden = 0 AND state = 'open' AND solved_by_id IS NULL")),
        Index("ix_backlog_item_visible_repository", "repository_id",
              postgresql_where=text("hidden IS false"), sqlite_where=text("hidden = 0")),
        # The open list of some projects (the project and SDG filters), in its order.
        Index("ix_backlog_item_open_repository", "repository_id", "forge_updated_at", "id",
              postgresql_where=text("hidden IS false AND state = 'open' AND solved_by_id IS NULL"),
              sqlite_where=text("hidden = 0 AND state = 'open' AND solved_by_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="RESTRICT"), index=True
    )
    forge_host: Mapped[str] = mapped_column(String(255))
    forge_id: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(1024))
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[ItemState] = mapped_column(db.Enum(ItemState, native_enum=False, length=10))
    # GitHub: completed, not_planned, reopened, duplicate; None when unknown.
    state_reason: Mapped[str | None] = mapped_column(String(40))
    author_login: Mapped[str | None] = mapped_column(String(255))
    author_forge_id: Mapped[int | None] = mapped_column(BigInteger)
    html_url: Mapped[str] = mapped_column(String(2000))
    comments_count: Mapped[int] = mapped_column(default=0)
    locked: Mapped[bool] = mapped_column(default=False)
    forge_created_at: Mapped[datetime]
    forge_updated_at: Mapped[datetime]
    forge_closed_at: Mapped[datetime | None]
    # Commons fields, curated by maintainers. ``hidden`` is also the one "not
    # public" bit: set for an item deleted on the forge, transferred out of the
    # commons, or kept private by the forge (``private_reason``); see
    # marketplace.backlog.ending.
    hidden: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int | None]
    # More than one approved claim may hold the item at once (a maintainer opened it to a team).
    open_to_team: Mapped[bool] = mapped_column(default=False)
    funding_goal_minor: Mapped[int | None] = mapped_column(BigInteger)
    funding_goal_currency: Mapped[str | None] = mapped_column(String(3))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The forge deleted the issue; the item stays (money may point at it) but is hidden.
    deleted_at: Mapped[datetime | None]
    # The merged pull/merge request that closed this item, from the linking rules.
    solved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("pull_request.id", ondelete="SET NULL", use_alter=True), index=True
    )
    # Where the work went when the item closed without it: the forge's target
    # issue id (GitLab moved_to_id / duplicated_to_id), or an item a maintainer
    # named (a GitHub duplicate's comment is not reliable enough).
    close_target_forge_id: Mapped[int | None] = mapped_column(BigInteger)
    close_target_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("backlog_item.id", ondelete="SET NULL")
    )
    # A maintainer's decision on a close the forge gave no known reason for
    # (completed | not_planned); see marketplace.backlog.close_reasons.
    close_decision: Mapped[str | None] = mapped_column(String(20))
    # Why the forge keeps the item private (confidential | repository) and since
    # when; such an item is hidden, and shown again when the forge makes it public.
    private_reason: Mapped[str | None] = mapped_column(String(20))
    private_since: Mapped[datetime | None]

    repository: Mapped["Repository"] = relationship()  # noqa: F821
    solved_by: Mapped["PullRequest | None"] = relationship(foreign_keys=[solved_by_id])
    aliases: Mapped[list["ItemAlias"]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemAlias.id"
    )
    labels: Mapped[list["ItemLabel"]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemLabel.name"
    )
    funding: Mapped[list["ItemFunding"]] = relationship(
        back_populates="item", order_by="ItemFunding.currency"
    )

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def close_reason(self):
        """The :class:`~marketplace.backlog.close_reasons.CloseReason` of the item, None while open."""
        return close_reason_of(self)

    @property
    def closed_as_not_planned(self) -> bool:
        """Closed for a reason that pays nobody (not planned, duplicate, moved,
        deleted, unknown): no payout, the funders take their money back."""
        reason = self.close_reason
        return reason is not None and not pays(reason)

    @property
    def solved(self) -> bool:
        """The work is done: a merged change closes it (unless the forge then
        closed it without the work), or it was closed as completed. The same
        rule as :func:`marketplace.backlog.queries.solved_condition`."""
        reason = self.close_reason
        return reason is CloseReason.completed or (self.solved_by_id is not None and reason is None)

    @property
    def work_done(self) -> bool:
        """Solved, closed, deleted or withheld: it takes no new pledges or claims."""
        return (self.solved_by_id is not None or self.state is ItemState.closed
                or self.deleted_at is not None or self.private_reason is not None)


class ItemAlias(db.Model):
    """A former forge identity of an item (before the issue was transferred)."""

    __tablename__ = "item_alias"
    __table_args__ = (
        UniqueConstraint("forge_host", "forge_id", name="uq_item_alias_forge_host_forge_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="CASCADE"), index=True)
    forge_host: Mapped[str] = mapped_column(String(255))
    forge_id: Mapped[int] = mapped_column(BigInteger)
    repository_full_name: Mapped[str] = mapped_column(String(511))
    number: Mapped[int]
    html_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[BacklogItem] = relationship(back_populates="aliases")


class ItemLabel(db.Model):
    """A forge label on an item (names only; colours are the forge's business)."""

    __tablename__ = "item_label"
    # By name then item: the label filter reads the index alone (issue 15).
    __table_args__ = (Index("ix_item_label_name", "name", "item_id"),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey("backlog_item.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)

    item: Mapped[BacklogItem] = relationship(back_populates="labels")


class ItemFunding(db.Model):
    """Per item and currency, the money pledged to it, in minor units.

    ``held_minor`` is the bounty (money received and in escrow);
    ``pending_minor`` is pledged but not yet received and never counts as
    funded. This is a projection that the ledger maintains and checks against
    its entries; nothing else writes it.
    """

    __tablename__ = "item_funding"
    __table_args__ = (
        CheckConstraint("held_minor >= 0", name="held_not_negative"),
        CheckConstraint("pending_minor >= 0", name="pending_not_negative"),
        Index("ix_item_funding_currency_held", "currency", "held_minor"),
    )

    item_id: Mapped[int] = mapped_column(
        ForeignKey("backlog_item.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    held_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_minor: Mapped[int] = mapped_column(BigInteger, default=0)

    item: Mapped[BacklogItem] = relationship(back_populates="funding")


class PullRequest(db.Model):
    """A pull request (GitHub) or merge request (GitLab) of a repository.

    Unique by (repository, number). GitHub's list-issues endpoint gives only
    the issue id of a pull request (``forge_issue_id``); the pull request's own
    id (``forge_id``) arrives with the pulls API or a webhook.
    """

    __tablename__ = "pull_request"
    __table_args__ = (
        UniqueConstraint("repository_id", "number", name="uq_pull_request_repository_id_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="RESTRICT"), index=True
    )
    forge_host: Mapped[str] = mapped_column(String(255))
    forge_id: Mapped[int | None] = mapped_column(BigInteger)
    forge_issue_id: Mapped[int | None] = mapped_column(BigInteger)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(1024))
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[PullRequestState] = mapped_column(
        db.Enum(PullRequestState, native_enum=False, length=10)
    )
    author_login: Mapped[str | None] = mapped_column(String(255))
    author_forge_id: Mapped[int | None] = mapped_column(BigInteger)
    base_branch: Mapped[str | None] = mapped_column(String(255))
    # "owner/name" of the head repository when it is a fork.
    head_repository: Mapped[str | None] = mapped_column(String(511))
    html_url: Mapped[str] = mapped_column(String(2000))
    forge_created_at: Mapped[datetime]
    forge_updated_at: Mapped[datetime]
    forge_closed_at: Mapped[datetime | None]
    merged_at: Mapped[datetime | None]
    # The author's account was deleted (GitHub sends "user": null).
    author_deleted: Mapped[bool] = mapped_column(default=False)
    # Reconciliation found it gone from the forge (GitLab sends no hook for a
    # deleted merge request); its links no longer count.
    deleted_at: Mapped[datetime | None]
    # Set when the links of the merged request were read: the forges close
    # issues at merge time, so later edits of its text change nothing.
    links_frozen_at: Mapped[datetime | None]
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)

    repository: Mapped["Repository"] = relationship()  # noqa: F821
    links: Mapped[list["ItemLink"]] = relationship(
        back_populates="pull_request", cascade="all, delete-orphan", order_by="ItemLink.id"
    )

    @property
    def author_display(self) -> str:
        if self.author_deleted:
            return "deleted"
        return self.author_login or "unknown"


class ItemLinkKind(str, enum.Enum):
    """How a pull/merge request refers to an issue."""

    closes = "closes"  # closing keyword, same member project, base is the default branch
    cross_project = "cross_project"  # closing keyword, another project: its maintainer decides
    mention = "mention"  # referenced without closing it


class LinkSource(str, enum.Enum):
    """Who made the link."""

    keyword = "keyword"  # read from the title, body or commits by sync
    manual = "manual"  # linked by a maintainer


class ItemLink(db.Model):
    """A reference from a pull/merge request to an issue, known to us or not.

    ``item_id`` is set when the target is in the backlog. Keyword links are
    recomputed whenever the pull request changes; manual links and manual
    removals (``removed``) survive that.
    """

    __tablename__ = "item_link"
    __table_args__ = (
        UniqueConstraint(
            "pull_request_id", "target_host", "target_path", "target_number",
            name="uq_item_link_target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_request.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("backlog_item.id", ondelete="SET NULL"), index=True
    )
    target_host: Mapped[str] = mapped_column(String(255))
    target_path: Mapped[str] = mapped_column(String(511))  # "owner/name" as written
    target_number: Mapped[int]
    kind: Mapped[ItemLinkKind] = mapped_column(db.Enum(ItemLinkKind, native_enum=False, length=20))
    source: Mapped[LinkSource] = mapped_column(db.Enum(LinkSource, native_enum=False, length=20))
    removed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))

    pull_request: Mapped[PullRequest] = relationship(back_populates="links")
    item: Mapped[BacklogItem | None] = relationship()

    @property
    def target(self) -> str:
        return f"{self.target_path}#{self.target_number}"
