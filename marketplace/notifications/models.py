"""The outbox: every e-mail and notice the site will send, stored in the
transaction that causes it.

A row is written beside the change that causes it (a rollback drops both);
after commit a job carrying only the row's id sends it, and a periodic pass
sends what is still waiting (its job was lost, Redis was down, SMTP failed).
Nothing a person must receive depends on Redis being up at that moment.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class OutboxKind(str, enum.Enum):
    """What a row holds."""

    mail = "mail"  # one e-mail rendered when queued: recipient, subject, body
    notice = "notice"  # a notice (claims, payouts, certifications) composed when sent


class OutboxState(str, enum.Enum):
    """Where a row stands. Allowed moves: waiting → sent, waiting → failed."""

    waiting = "waiting"  # not sent yet; tried again from next_attempt_at
    sent = "sent"  # handed to the mail transport, once
    failed = "failed"  # given up after MAX_ATTEMPTS tries; see last_error


class OutboxMessage(db.Model):
    """One outgoing e-mail (``kind`` mail) or notice (``kind`` notice).

    ``body`` of a mail may hold a token link (verification, reset,
    invitation): it is erased once the mail is sent, so the link does not
    outlive its delivery in the database. ``attempts`` counts failed tries;
    ``next_attempt_at`` (naive UTC) is when the periodic pass tries again.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_waiting", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OutboxKind] = mapped_column(db.Enum(OutboxKind, native_enum=False, length=10))
    state: Mapped[OutboxState] = mapped_column(db.Enum(OutboxState, native_enum=False, length=10),
                                               default=OutboxState.waiting)
    # A mail: its recipient, subject and body as rendered when queued.
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    # A notice: about what (claim, payout, share, certification), which kind, which row,
    # and the money figures taken from the ledger when it was queued. A mail keeps its
    # extra header fields in ``figures`` as {"headers": {name: value}} (see ``headers``).
    notice_subject: Mapped[str | None] = mapped_column(String(20))
    notice_kind: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None]
    figures: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # How many e-mails the row became (a notice may go to several people).
    sent_count: Mapped[int | None]

    @property
    def headers(self) -> dict[str, str]:
        """A mail's extra header fields (``{"List-Unsubscribe": "<https://…>", …}``),
        empty for none and for a notice."""
        if self.kind is not OutboxKind.mail or not isinstance(self.figures, dict):
            return {}
        return dict(self.figures.get("headers") or {})
