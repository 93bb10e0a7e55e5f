"""Rows of issue 20: who follows which item, which notice was sent once, and
the fiscal host's settings that an admin keeps (overriding the environment)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class ItemFollow(db.Model):
    """A person follows an item without pledging: they get its solved and paid notices."""

    __tablename__ = "item_follow"
    __table_args__ = (UniqueConstraint("item_id", "user_id", name="uq_item_follow_item_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped["BacklogItem"] = relationship()  # noqa: F821
    user: Mapped["User"] = relationship()  # noqa: F821


class SentNotice(db.Model):
    """A notice that must go once per event (a receipt, a refund, a payout told to a
    funder or follower): its ``key`` names the event and the person, unique, so a
    replayed webhook or a second run of a job finds it and sends nothing."""

    __tablename__ = "sent_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FiscalHostSetting(db.Model):
    """The fiscal host as an admin set it (one row, id 1). Each field set here
    overrides the environment (``FISCAL_HOST_NAME``, ``FISCAL_HOST_EMAIL``,
    ``FISCAL_HOST_ADDRESS``, ``BANK_TRANSFER_INSTRUCTIONS_<currency>``);
    empty fields fall back to it. ``bank_instructions`` maps an ISO 4217 code
    to the text a funder follows to pay that currency."""

    __tablename__ = "fiscal_host_setting"

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(Text)
    bank_instructions: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
