"""The audit log: who did what, when, to which object, from where."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from marketplace.access import admin_required
from marketplace.admin.blueprint import bp, like, listing, paginate, search_text
from marketplace.audit.models import AuditEvent


@bp.get("/audit")
@admin_required
def audit_log():
    """The audit log, newest first; search by action, actor, object or request id."""
    q = search_text()
    stmt = select(AuditEvent)
    if q:
        pattern = like(q.lower())
        stmt = stmt.where(func.lower(AuditEvent.action).like(pattern, escape="\\")
                          | func.lower(AuditEvent.actor).like(pattern, escape="\\")
                          | func.lower(AuditEvent.object_type + ":" + func.coalesce(AuditEvent.object_id, ""))
                          .like(pattern, escape="\\")
                          | func.lower(func.coalesce(AuditEvent.origin, "")).like(pattern, escape="\\"))
    page = paginate(stmt, [AuditEvent.occurred_at.desc(), AuditEvent.id.desc()])
    return render_template("admin/audit.html", **listing(page), q=q)
