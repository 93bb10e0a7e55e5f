"""Sending one outbox row, once, even when two workers try at the same time.

A row is sent under its row lock (``SELECT … FOR UPDATE SKIP LOCKED``): the
worker that holds the lock checks that the row still waits, hands the e-mails
to the transport and marks the row ``sent`` in the same transaction. A second
worker either skips the locked row or, once the first committed, finds it
``sent``. A worker killed after the SMTP server took the message but before
its commit leaves the row waiting, so it is sent again: at least once, never
lost; every retry carries the same ``Message-ID`` (``<outbox-ID.N@…>``), by
which mail systems recognise the duplicate.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from marketplace.extensions import db
from marketplace.notifications.mail import deliver
from marketplace.notifications.models import OutboxKind, OutboxMessage, OutboxState
from marketplace.notifications.notices import compose
from marketplace.timeutil import utcnow

MAX_ATTEMPTS = 10
FIRST_BACKOFF = 60  # seconds; doubled after each failed try
MAX_BACKOFF = 6 * 3600  # seconds


def send(message_id: int) -> str:
    """Send the outbox row ``message_id`` if it still waits; flushes, the caller commits.

    Returns ``"sent"`` when this call sent it; ``"busy"`` when another worker
    holds the row (it sends it); ``"missing"`` for no such row; ``"already
    sent"`` or ``"already failed"`` when there is nothing left to do. Raises what the transport
    raises (``smtplib.SMTPException``, ``OSError``) or what composing a notice
    raises; the caller then rolls back and calls :func:`record_failure`.
    """
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id)
                            .with_for_update(skip_locked=True))
    if row is None:
        exists = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.id == message_id))
        return "busy" if exists is not None else "missing"
    if row.state is not OutboxState.waiting:
        return f"already {row.state.value}"
    mails = messages_of(row)
    for number, (to, subject, body) in enumerate(mails):
        deliver(to, subject, body, message_id=f"<outbox-{row.id}.{number}@backlog-commons.local>",
                headers=row.headers or None)
    row.state = OutboxState.sent
    row.sent_at = utcnow()
    row.sent_count = len(mails)
    if row.kind is OutboxKind.mail:
        row.body = None  # the link it may hold does not outlive the delivery
        row.figures = None  # nor does the signed link of its List-Unsubscribe header
    db.session.flush()
    return "sent"


def messages_of(row: OutboxMessage) -> list[tuple[str, str, str]]:
    """The e-mails ``(to, subject, body)`` a row becomes now: a mail as stored;
    a notice composed from the database (empty when its object is gone or
    nobody has a confirmed address)."""
    if row.kind is OutboxKind.mail:
        return [(row.recipient, row.subject, row.body or "")]
    return compose(row.notice_subject, row.notice_kind, row.object_id, row.figures)


def record_failure(message_id: int, error: BaseException) -> OutboxMessage | None:
    """Count a failed try of the row (locked until the caller commits): it is
    tried again after a doubling back-off (one minute, then two, … at most six
    hours), and marked ``failed`` after :data:`MAX_ATTEMPTS` tries. Only the
    error's class is kept with its message cut to 400 characters (a
    transport's message never holds the e-mail). Returns the row, or None
    when it is gone or no longer waiting."""
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update())
    if row is None or row.state is not OutboxState.waiting:
        return None
    row.attempts += 1
    row.last_error = f"{type(error).__name__}: {error}"[:400]
    row.next_attempt_at = utcnow() + timedelta(seconds=min(FIRST_BACKOFF * 2 ** (row.attempts - 1), MAX_BACKOFF))
    if row.attempts >= MAX_ATTEMPTS:
        row.state = OutboxState.failed
    db.session.flush()
    return row
