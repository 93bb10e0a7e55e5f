"""Recording audit events. Flushes with the caller's transaction, never commits."""
from __future__ import annotations

from flask import g, has_request_context
from sqlalchemy import select

from marketplace.audit.models import AuditEvent
from marketplace.extensions import db


def record(
    action: str,
    object_type: str,
    object_id: object | None,
    *,
    actor: str,
    actor_user_id: int | None = None,
    origin: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Add an :class:`AuditEvent` to the session and return it.

    ``origin`` defaults to the current request id when called within a request.
    """
    if origin is None and has_request_context():
        origin = g.get("request_id")
    event = AuditEvent(
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        actor=actor,
        actor_user_id=actor_user_id,
        origin=origin,
        details=details or {},
    )
    db.session.add(event)
    return event


def latest(action: str) -> AuditEvent | None:
    """The most recent :class:`AuditEvent` of ``action`` (by id), or None."""
    return db.session.scalar(select(AuditEvent).where(AuditEvent.action == action)
                             .order_by(AuditEvent.id.desc()).limit(1))
