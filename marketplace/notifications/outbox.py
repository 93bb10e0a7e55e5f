"""Writing to the outbox (:class:`~marketplace.notifications.models.OutboxMessage`)
in the caller's transaction, and choosing what the periodic pass sends.

Each new row is flushed and the job ``jobs.notifications.send_outbox_message``
is queued with its id only, to run after commit: Redis never holds a message,
an address or a link, and a rollback drops both the row and the job. Sending
itself is :mod:`marketplace.notifications.sending`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from marketplace.extensions import db
from marketplace.notifications.models import OutboxKind, OutboxMessage, OutboxState
from marketplace.tasks import enqueue
from marketplace.timeutil import utcnow

SEND_JOB = "jobs.notifications.send_outbox_message"


def add_mail(to: str, subject: str, body: str, *, headers: dict[str, str] | None = None) -> OutboxMessage:
    """Store one rendered e-mail to ``to`` and send it after commit; ``headers``
    (extra header fields, e.g. ``List-Unsubscribe``) are kept with it as
    ``figures = {"headers": {...}}`` (:attr:`OutboxMessage.headers`). Returns the flushed row."""
    return _add(OutboxMessage(kind=OutboxKind.mail, recipient=to, subject=subject, body=body,
                              figures={"headers": dict(headers)} if headers else None))


def add_notice(subject: str, kind: str, object_id: int, figures: dict | None = None) -> OutboxMessage:
    """Store a notice (``subject`` claim, payout, share or certification; ``kind`` as
    :mod:`marketplace.notifications.notices` lists) about the row ``object_id``,
    composed when it is sent; ``figures`` are the money figures taken now.
    Returns the flushed row."""
    return _add(OutboxMessage(kind=OutboxKind.notice, notice_subject=subject, notice_kind=kind,
                              object_id=object_id, figures=figures))


def _add(row: OutboxMessage) -> OutboxMessage:
    now = utcnow()
    row.created_at = row.next_attempt_at = now
    db.session.add(row)
    db.session.flush()
    enqueue(SEND_JOB, row.id)
    return row


def waiting_ids(now: datetime | None = None, limit: int = 200) -> list[int]:
    """Ids of the rows still waiting whose next try is due at ``now`` (naive
    UTC, default the current time), oldest first, at most ``limit``."""
    return list(db.session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.state == OutboxState.waiting, OutboxMessage.next_attempt_at <= (now or utcnow()))
        .order_by(OutboxMessage.id).limit(limit)))


def waiting_count() -> int:
    """How many rows wait to be sent (for the readiness page and operators)."""
    return db.session.scalar(select(db.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.state == OutboxState.waiting)) or 0
