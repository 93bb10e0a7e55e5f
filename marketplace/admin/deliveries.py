"""Webhook deliveries: the list (by status) and replay."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from marketplace.access import admin_required, current_actor
from marketplace.admin.blueprint import bp, listing, paginate
from marketplace.admin.forms import ActionForm
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from marketplace.webhooks.service import enqueue_processing

STATUS_LABELS = {
    DeliveryStatus.pending: _l("pending"),
    DeliveryStatus.waiting: _l("waiting for what it is about"),
    DeliveryStatus.processed: _l("processed"),
    DeliveryStatus.ignored: _l("ignored"),
    DeliveryStatus.malformed: _l("malformed"),
    DeliveryStatus.failed: _l("failed"),
}


@bp.get("/deliveries")
@admin_required
def deliveries():
    """Webhook deliveries, newest first, optionally by ``status``."""
    status = request.args.get("status")
    stmt = select(WebhookDelivery)
    if status in {s.value for s in DeliveryStatus}:
        stmt = stmt.where(WebhookDelivery.status == DeliveryStatus(status))
    else:
        status = None
    page = paginate(stmt, [WebhookDelivery.received_at.desc(), WebhookDelivery.id.desc()])
    return render_template("admin/deliveries.html", **listing(page), status=status,
                           statuses=[s.value for s in DeliveryStatus],
                           status_labels={s.value: STATUS_LABELS.get(s, s.value) for s in DeliveryStatus})


@bp.post("/deliveries/<id:delivery_id>/replay")
@admin_required
def replay(delivery_id: int):
    """Process a stored delivery again (after a fix, or to re-apply it)."""
    delivery = db.get_or_404(WebhookDelivery, delivery_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    me = current_actor()
    delivery.status = DeliveryStatus.pending
    audit.record("webhook.replayed", "webhook_delivery", delivery.id, actor=f"user:{me.id}", actor_user_id=me.id)
    enqueue_processing(delivery.id, replay=True)
    db.session.commit()
    flash(_("Delivery %(id)s was queued again.", id=delivery.delivery_id))
    return redirect(url_for("admin.deliveries", status=request.args.get("status") or None))
