"""Webhook deliveries from the forges, stored before they are processed.

A delivery is stored under a unique (source, delivery id) in the request that
receives it; a job processes it after that commit. Nothing accepted is lost:
a delivery whose job failed stays ``failed`` with its error, and an admin can
replay it.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class DeliveryStatus(str, enum.Enum):
    """Where a delivery stands."""

    pending = "pending"  # stored, job enqueued
    # The event's object cannot be matched yet (its pledge, or the pledge's
    # payment, is not known yet: Stripe sends events in any order). Kept and
    # tried again: RQ retries with backoff, then the cron pass; see outcome.
    waiting = "waiting"
    processed = "processed"  # the event changed what it had to
    ignored = "ignored"  # an event or repository we do not handle; see outcome
    malformed = "malformed"  # signed, but the payload does not fit its event's schema; see outcome
    failed = "failed"  # the job raised; see outcome; can be replayed


class WebhookDelivery(db.Model):
    """One webhook request as received (headers we need and the raw body)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id", name="uq_webhook_delivery_source_delivery_id"),
        Index("ix_webhook_delivery_received", "received_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # github | gitlab
    delivery_id: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(100))
    action: Mapped[str | None] = mapped_column(String(100))
    # The raw body as received, so that a replay sees exactly what was signed.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        db.Enum(DeliveryStatus, native_enum=False, length=20), default=DeliveryStatus.pending
    )
    outcome: Mapped[str | None] = mapped_column(Text)
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repository.id", ondelete="SET NULL"), index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class NotMatchedYet(RuntimeError):
    """A handler cannot apply the event yet: the object it is about names no
    pledge we have, or the pledge's payment is not in our books yet. The
    delivery is kept as ``waiting`` and tried again (never done and forgotten)."""
