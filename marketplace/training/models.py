"""Training items, project mentors, training claims, mentor reviews and the
certifications earned through training.

A *training claim* is a claim on a training item by an implementor not
certified for the item's project when they asked: a named mentor approves it,
reviews the change, and shares the payout.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow

DEFAULT_MERGES_REQUIRED = 3  # merged training items that earn the project's certification
DEFAULT_MENTORS_REQUIRED = 2  # different mentors who reviewed them
DEFAULT_TRAINEE_PERCENT = 80  # the trainee's part of the net; the mentor has the rest


class TrainingItem(db.Model):
    """A maintainer marked ``item_id`` as suitable for training."""

    __tablename__ = "training_item"

    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="CASCADE"), primary_key=True)
    marked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRule(db.Model):
    """A project's training rule; a project without a row uses the defaults above."""

    __tablename__ = "training_rule"
    __table_args__ = (
        CheckConstraint("merges_required BETWEEN 1 AND 50", name="merges_range"),
        CheckConstraint("mentors_required BETWEEN 1 AND 10", name="mentors_range"),
        CheckConstraint("trainee_percent BETWEEN 1 AND 100", name="trainee_percent_range"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), primary_key=True)
    merges_required: Mapped[int] = mapped_column(default=DEFAULT_MERGES_REQUIRED)
    mentors_required: Mapped[int] = mapped_column(default=DEFAULT_MENTORS_REQUIRED)
    trainee_percent: Mapped[int] = mapped_column(default=DEFAULT_TRAINEE_PERCENT)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMentor(db.Model):
    """``user_id`` mentors trainees of ``project_id`` (named by a maintainer).

    Acts as a mentor only while certified for the project or a maintainer of it."""

    __tablename__ = "project_mentor"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_mentor_project_id_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    named_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    named_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped["User"] = relationship(foreign_keys=[user_id])  # noqa: F821


class TrainingClaim(db.Model):
    """The claim ``claim_id`` is a training claim of ``trainee_id``; ``mentor_id``
    is the mentor who approved it (None while it waits for one)."""

    __tablename__ = "training_claim"
    __table_args__ = (Index("ix_training_claim_trainee_project", "trainee_id", "project_id"),)

    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"))
    trainee_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    claim: Mapped["Claim"] = relationship()  # noqa: F821
    mentor: Mapped["User | None"] = relationship(foreign_keys=[mentor_id])  # noqa: F821


class ReviewVerdict(str, enum.Enum):
    """What a mentor's review says about the trainee's change."""

    approved = "approved"  # the change may be merged and paid
    changes_requested = "changes_requested"  # the trainee has more to do


class MentorReview(db.Model):
    """A review by the claim's mentor, from the site or from the forge.

    ``external_id`` (``github.com:review:<id>``, a GitLab delivery) keeps a
    forge review recorded once however often it is delivered; the latest
    review by ``submitted_at`` is the mentor's standing verdict. ``mentor_id``
    is None once that mentor's account is deleted (the review stays)."""

    __tablename__ = "mentor_review"
    __table_args__ = (Index("ix_mentor_review_claim_submitted", "claim_id", "submitted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id", ondelete="CASCADE"))
    # None once the mentor's account is deleted: the review stays on record (migration 0027).
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    verdict: Mapped[ReviewVerdict] = mapped_column(db.Enum(ReviewVerdict, native_enum=False, length=20))
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20), default="site")  # site | github | gitlab
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    mentor: Mapped["User | None"] = relationship()  # noqa: F821


class EarnedCertification(db.Model):
    """A project certification earned through training (not granted by hand)."""

    __tablename__ = "earned_certification"

    certification_id: Mapped[int] = mapped_column(ForeignKey("certification.id", ondelete="CASCADE"),
                                                  primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    merges: Mapped[int]
    mentors: Mapped[int]
    earned_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    certification: Mapped["Certification"] = relationship()  # noqa: F821
    user: Mapped["User"] = relationship(foreign_keys=[user_id])  # noqa: F821
