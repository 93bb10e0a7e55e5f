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
