"""Reports' own rows: grants (an organisation's tag on its pledges), the
deployment and development countries of member projects (from the DPG
Standard screening records), and stored report figures.

Money figures are never stored here: statements and reports are computed
from the ledger entries (:mod:`marketplace.reports.service`);
``report_snapshot`` only keeps a computed public report for a few minutes so
that anonymous requests do not recompute it.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow

COUNTRY_KINDS = ("deployment", "development")


class Grant(db.Model):
    """A grant of a funder organisation: its pledges tagged with it are what the
    grant paid for. ``starts_on``..``ends_on`` (UTC dates, both included) is the
    grant's period, ``currency`` its ISO 4217 currency."""

    __tablename__ = "grant_tag"
    __table_args__ = (
        UniqueConstraint("organisation_id", "reference", name="uq_grant_tag_org_reference"),
        CheckConstraint("ends_on >= starts_on", name="grant_period_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(100))  # the funder's own grant number
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    currency: Mapped[str] = mapped_column(String(3))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped["Organisation"] = relationship()  # noqa: F821


class GrantPledge(db.Model):
    """A pledge tagged with a grant; a pledge belongs to at most one grant."""

    __tablename__ = "grant_pledge"

    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledge.id", ondelete="RESTRICT"), primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grant_tag.id", ondelete="CASCADE"), index=True)
    tagged_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    tagged_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectCountry(db.Model):
    """A country (ISO 3166-1 alpha-2) where a member project is deployed or developed,
    from its DPG Standard screening record (``locations``)."""

    __tablename__ = "project_country"
    __table_args__ = (Index("ix_project_country_kind_country", "kind", "country"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)  # deployment | development
    country: Mapped[str] = mapped_column(String(2), primary_key=True)


class ReportSnapshot(db.Model):
    """A computed public report (JSON-ready figures, minor units per currency),
    kept under ``key`` until it is older than the configured age."""

    __tablename__ = "report_snapshot"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)
