"""Repositories on a forge (GitHub, GitLab) that belong to member projects.

A repository is identified by (forge host, the forge's numeric id) once the
id is known, because owners and names change (renames, transfers). Until the
first sync learns the id, it is matched by host and path; every former path is
kept as a :class:`RepositoryAlias` so that old links and webhooks still find it.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class ForgeKind(str, enum.Enum):
    """The forge software, which decides the API client."""

    github = "github"
    gitlab = "gitlab"


class SyncStatus(str, enum.Enum):
    """Where a repository's sync stands."""

    never = "never"  # never synced
    running = "running"  # a sync job is working on it
    ok = "ok"  # last sync completed
    failed = "failed"  # last sync failed; see sync_error
    forbidden = "forbidden"  # the forge refused access; a maintainer must act


class Repository(db.Model):
    """A forge repository whose issues feed the backlog."""

    __tablename__ = "repository"
    __table_args__ = (
        UniqueConstraint("host", "forge_id", name="uq_repository_host_forge_id"),
        UniqueConstraint("host", "path_key", name="uq_repository_host_path_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("member_project.id", ondelete="RESTRICT"), index=True
    )
    forge: Mapped[ForgeKind] = mapped_column(db.Enum(ForgeKind, native_enum=False, length=20))
    host: Mapped[str] = mapped_column(String(255))
    # GitLab namespaces nest (group/subgroup); owner holds the whole namespace.
    owner: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    # lower("owner/name"): forges treat paths case-insensitively.
    path_key: Mapped[str] = mapped_column(String(511))
    forge_id: Mapped[int | None] = mapped_column(BigInteger)
    url: Mapped[str] = mapped_column(String(2000))
    label: Mapped[str | None] = mapped_column(String(300))
    default_branch: Mapped[str | None] = mapped_column(String(255))
    sync_status: Mapped[SyncStatus] = mapped_column(
        db.Enum(SyncStatus, native_enum=False, length=20), default=SyncStatus.never
    )
    sync_error: Mapped[str | None] = mapped_column(Text)
    # Largest forge updated_at seen: the next incremental sync asks since this.
    sync_cursor: Mapped[datetime | None]
    last_synced_at: Mapped[datetime | None]
    # The forge answered 404 on pull/merge requests: the feature is off there.
    pulls_disabled: Mapped[bool] = mapped_column(default=False)
    # GitHub App installation that covers this repository, when known.
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    # What the forge says about who may see it: public | private | internal
    # (None: not told yet). Issues of a repository that is not public are never published.
    visibility: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped["MemberProject"] = relationship(back_populates="repositories")  # noqa: F821
    aliases: Mapped[list["RepositoryAlias"]] = relationship(
        back_populates="repository", cascade="all, delete-orphan", order_by="RepositoryAlias.id"
    )

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class RepositoryAlias(db.Model):
    """A former path of a repository (before a rename or transfer)."""

    __tablename__ = "repository_alias"
    __table_args__ = (
        UniqueConstraint("host", "path_key", name="uq_repository_alias_host_path_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    path_key: Mapped[str] = mapped_column(String(511))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    repository: Mapped[Repository] = relationship(back_populates="aliases")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class HttpCacheEntry(db.Model):
    """The ETag of a forge API URL we have fully processed.

    Sent back as ``If-None-Match``; a 304 then costs no rate limit and means
    the page is unchanged since it was processed, so it is skipped. ``next_url``
    keeps the page's ``Link: rel="next"`` because a 304 may not repeat it.
    """

    __tablename__ = "http_cache_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    etag: Mapped[str] = mapped_column(String(255))
    next_url: Mapped[str | None] = mapped_column(String(2000))
    # Largest updated_at on the page (UTC): lets a skipped page still move the cursor.
    max_updated_at: Mapped[datetime | None]
    stored_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncRunStatus(str, enum.Enum):
    """Where one sync run stands."""

    queued = "queued"
    running = "running"
    waiting = "waiting"  # rate-limited; scheduled again at resume_at
    done = "done"
    failed = "failed"  # gave up; see error


class SyncRun(db.Model):
    """One full or incremental sync of a repository, with its progress."""

    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"), index=True)
    full: Mapped[bool] = mapped_column(default=False)
    status: Mapped[SyncRunStatus] = mapped_column(
        db.Enum(SyncRunStatus, native_enum=False, length=20), default=SyncRunStatus.queued
    )
    attempts: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int] = mapped_column(default=0)
    not_modified: Mapped[int] = mapped_column(default=0)  # pages answered 304
    items_seen: Mapped[int] = mapped_column(default=0)
    pull_requests_seen: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    resume_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    repository: Mapped[Repository] = relationship()
