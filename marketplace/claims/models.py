"""Claims (an implementor's request to do an item) and certifications.

Claim states only move along :data:`CLAIM_ALLOWED_FROM`; each move is one
conditional UPDATE, so two racing writers cannot both move the same claim.
"""
from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class ClaimState(str, enum.Enum):
    """Where a claim stands."""

    requested = "requested"  # asked for, a maintainer decides
    approved = "approved"  # the implementor may do the work
    submitted = "submitted"  # a pull/merge request of the claimant closes the item
    # Their change merged and a payout was proposed to them, or a maintainer approved paying them.
    completed = "completed"
    rejected = "rejected"  # refused (or reassigned to someone else) by a maintainer
    withdrawn = "withdrawn"  # given up by the claimant
    lapsed = "lapsed"  # approved, but no linked change before the deadline
    cancelled = "cancelled"  # the item ended without the work (not planned, duplicate, moved, deleted)


ACTIVE_CLAIM_STATES = (ClaimState.requested, ClaimState.approved, ClaimState.submitted)
# States holding the item (one at a time unless the item is open to a team).
HOLDING_CLAIM_STATES = (ClaimState.approved, ClaimState.submitted)

CLAIM_ALLOWED_FROM: dict[ClaimState, frozenset[ClaimState]] = {
    ClaimState.approved: frozenset({ClaimState.requested}),
    ClaimState.submitted: frozenset({ClaimState.approved}),
    ClaimState.completed: frozenset({ClaimState.approved, ClaimState.submitted}),
    ClaimState.rejected: frozenset({ClaimState.requested, ClaimState.approved, ClaimState.submitted}),
    ClaimState.withdrawn: frozenset({ClaimState.requested, ClaimState.approved, ClaimState.submitted}),
    # Approved with no change by the deadline, or submitted whose change closed unmerged.
    ClaimState.lapsed: frozenset({ClaimState.approved, ClaimState.submitted}),
    ClaimState.cancelled: frozenset({ClaimState.requested, ClaimState.approved, ClaimState.submitted}),
}


class Claim(db.Model):
    """``claimant`` (alone, or for an implementor firm) asks to do ``item``.

    ``holding_item_id`` equals ``item_id`` while the claim is approved or
    submitted on an item that is not open to a team, and is NULL otherwise:
    its unique constraint makes "one approved claim per item" hold even when
    two maintainers approve two claims at the same moment.
    """

    __tablename__ = "claim"
    __table_args__ = (
        CheckConstraint("estimate_days > 0 AND estimate_days <= 365", name="estimate_range"),
        Index("ix_claim_claimant_state", "claimant_id", "state"),
        Index("ix_claim_state_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"), index=True)
    claimant_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="SET NULL"))
    plan: Mapped[str] = mapped_column(Text)
    estimate_days: Mapped[int]
    deadline: Mapped[date]  # UTC date; the claim lapses after it ends
    state: Mapped[ClaimState] = mapped_column(
        db.Enum(ClaimState, native_enum=False, length=20), default=ClaimState.requested)
    holding_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("backlog_item.id", ondelete="RESTRICT"), unique=True)
    pull_request_id: Mapped[int | None] = mapped_column(ForeignKey("pull_request.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]  # the lapse warning was sent
    closed_at: Mapped[datetime | None]

    item: Mapped["BacklogItem"] = relationship(foreign_keys=[item_id])  # noqa: F821
    claimant: Mapped["User"] = relationship(foreign_keys=[claimant_id])  # noqa: F821
    organisation: Mapped["Organisation | None"] = relationship()  # noqa: F821
    pull_request: Mapped["PullRequest | None"] = relationship()  # noqa: F821


class Certification(db.Model):
    """A contributor passed the commons' training (global: ``project_id`` NULL,
    granted by an admin) or is trusted by a project (granted by a maintainer).

    Valid from ``issued_at`` until ``expires_at`` (UTC) unless revoked.
    """

    __tablename__ = "certification"
    __table_args__ = (Index("ix_certification_user_project", "user_id", "project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"))
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[datetime | None]

    user: Mapped["User"] = relationship(foreign_keys=[user_id])  # noqa: F821
    issued_by: Mapped["User"] = relationship(foreign_keys=[issued_by_id])  # noqa: F821
    project: Mapped["MemberProject | None"] = relationship()  # noqa: F821

    def valid_at(self, when: datetime) -> bool:
        return self.revoked_at is None and self.issued_at <= when < self.expires_at

    @property
    def valid_until(self) -> date:
        """The last UTC day the certification holds: the day the issuer chose.
        ``expires_at`` is the first instant it no longer holds (midnight after
        that day), so showing ``expires_at``'s date would show one day more."""
        return (self.expires_at - timedelta(microseconds=1)).date()
