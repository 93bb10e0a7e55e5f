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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    # Commons fields, curated by maintainers.
    hidden: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int | None]
    funding_goal_minor: Mapped[int | None] = mapped_column(BigInteger)
    funding_goal_currency: Mapped[str | None] = mapped_column(String(3))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)

    repository: Mapped["Repository"] = relationship()  # noqa: F821
    labels: Mapped[list["ItemLabel"]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemLabel.name"
    )
    funding: Mapped[list["ItemFunding"]] = relationship(
        back_populates="item", order_by="ItemFunding.currency"
    )

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]


class ItemLabel(db.Model):
    """A forge label on an item (names only; colours are the forge's business)."""

    __tablename__ = "item_label"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("backlog_item.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)

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
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)

    repository: Mapped["Repository"] = relationship()  # noqa: F821
