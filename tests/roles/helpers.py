"""Reading the e-mails issue 20's code wrote to the outbox."""
from __future__ import annotations

from sqlalchemy import func, select

from marketplace.notifications.models import OutboxKind, OutboxMessage


def last_id(session) -> int:
    """The newest outbox row id now (rows of tests that served the app for real are older)."""
    return session.scalar(select(func.max(OutboxMessage.id))) or 0


def mails(session, after: int, to: str | None = None) -> list[OutboxMessage]:
    """Mail rows written after ``after``, to ``to`` when given, oldest first."""
    query = select(OutboxMessage).where(OutboxMessage.kind == OutboxKind.mail, OutboxMessage.id > after)
    if to is not None:
        query = query.where(OutboxMessage.recipient == to)
    return list(session.scalars(query.order_by(OutboxMessage.id)))
