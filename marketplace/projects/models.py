"""Member projects: digital public goods admitted to the commons.

The registry fields follow the DPGA nominee schema (``nominee-schema.json`` of
DPGAlliance/publicgoods-candidates): name, aliases, description, website,
license[{spdx, licenseURL}], SDGs[{SDGNumber, evidenceText, evidenceURL}],
sectors, type, organizations[{name, website, org_type}], stage.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class RegistryStatus(str, enum.Enum):
    """Where the DPGA registry keeps the record."""

    active = "active"  # nominees/ folder: a DPG or a nominee
    archived = "archived"  # archive/ folder
    excluded = "excluded"  # excluded-nominees/ folder


class MaturityStage(str, enum.Enum):
    """The commons' own view of a project's maturity, set by an admin."""

    nascent = "nascent"
    proven = "proven"
    mature = "mature"


class MemberProject(db.Model):
    """A digital public good in the commons; the registry record is its seed."""

    __tablename__ = "member_project"
    __table_args__ = (
        CheckConstraint("fee_rate_bps IS NULL OR (fee_rate_bps >= 0 AND fee_rate_bps <= 5000)",
                        name="fee_rate_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str | None] = mapped_column(String(2000))
    # [{"spdx": "MIT", "url": "https://…"}]
    licences: Mapped[list] = mapped_column(JSON, default=list)
    # registry "type": software, content, data, aimodel, standard
    types: Mapped[list] = mapped_column(JSON, default=list)
    sectors: Mapped[list] = mapped_column(JSON, default=list)
    # [{"name": …, "website": …, "org_type": "owner" | "funder" | …}]
    organisations: Mapped[list] = mapped_column(JSON, default=list)
    # registry "stage": "DPG" or "nominee" (None when the record has none)
    registry_stage: Mapped[str | None] = mapped_column(String(40))
    registry_status: Mapped[RegistryStatus] = mapped_column(
        db.Enum(RegistryStatus, native_enum=False, length=20)
    )
    registry_path: Mapped[str | None] = mapped_column(String(300))
    stage: Mapped[MaturityStage | None] = mapped_column(
        db.Enum(MaturityStage, native_enum=False, length=20)
    )
    # Admitted to the commons by an admin (registry records are candidates until then).
    admitted_at: Mapped[datetime | None]
    # The commons' fee on this project's payouts, in basis points (1/100 of a
    # percent); None: DEFAULT_FEE_RATE_BPS.
    fee_rate_bps: Mapped[int | None]

    def fee_rate(self, default_bps: int) -> int:
        """The fee rate in basis points that applies to this project."""
        return self.fee_rate_bps if self.fee_rate_bps is not None else default_bps
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sdgs: Mapped[list["ProjectSdg"]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        order_by="ProjectSdg.sdg",
    )
    repositories: Mapped[list["Repository"]] = relationship(  # noqa: F821
        back_populates="project", order_by="Repository.id"
    )
    links: Mapped[list["ProjectLink"]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        order_by="ProjectLink.id",
    )

    @property
    def sdg_numbers(self) -> list[int]:
        return [s.sdg for s in self.sdgs]

    @property
    def is_dpg(self) -> bool:
        return self.registry_stage == "DPG"


class ProjectSdg(db.Model):
    """One Sustainable Development Goal (1–17) a project serves, with evidence."""

    __tablename__ = "project_sdg"
    __table_args__ = (CheckConstraint("sdg BETWEEN 1 AND 17", name="sdg_range"),)

    project_id: Mapped[int] = mapped_column(
        ForeignKey("member_project.id", ondelete="CASCADE"), primary_key=True
    )
    sdg: Mapped[int] = mapped_column(primary_key=True, index=True)
    evidence_text: Mapped[str | None] = mapped_column(Text)
    evidence_url: Mapped[str | None] = mapped_column(String(2000))

    project: Mapped[MemberProject] = relationship(back_populates="sdgs")


class ProjectLinkKind(str, enum.Enum):
    """What a project link points at, when it is not a syncable repository."""

    other_host = "other_host"  # a host we do not sync: SourceForge, a data portal, a document
    forge_namespace = "forge_namespace"  # an organisation or group on a forge, not a repository


class ProjectLink(db.Model):
    """A registry "repository" URL kept as a link: shown, never synced."""

    __tablename__ = "project_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("member_project.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ProjectLinkKind] = mapped_column(db.Enum(ProjectLinkKind, native_enum=False, length=30))
    label: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2000))

    project: Mapped[MemberProject] = relationship(back_populates="links")


class ProjectMaintainer(db.Model):
    """A person who maintains a member project (may curate, approve claims and payouts)."""

    __tablename__ = "project_maintainer"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_maintainer_project_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    granted_by: Mapped[str] = mapped_column(String(200))  # "user:3", "invitation:9", "claim:4"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[MemberProject] = relationship(backref="maintainers")
    user: Mapped["User"] = relationship()  # noqa: F821


class MaintainerInvitation(db.Model):
    """An invitation by e-mail to co-maintain a project; the token is stored hashed."""

    __tablename__ = "maintainer_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]

    project: Mapped[MemberProject] = relationship()


class MaintainerRequest(db.Model):
    """A person whose verified forge identity administers a repository of the
    project asks to maintain it; an admin confirms or rejects."""

    __tablename__ = "maintainership_claim"  # the table keeps its first name

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    evidence: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")  # requested | confirmed | rejected
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    project: Mapped[MemberProject] = relationship()
    user: Mapped["User"] = relationship(foreign_keys=[user_id])  # noqa: F821
    repository: Mapped["Repository"] = relationship()  # noqa: F821
