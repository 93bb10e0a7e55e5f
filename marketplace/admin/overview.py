"""The admin start page: counts of what needs the fiscal host."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from marketplace.access import admin_required
from marketplace.admin.blueprint import bp
from marketplace.extensions import db
from marketplace.forges.models import Repository, SyncStatus
from marketplace.payouts.models import PayoutShare, ShareState
from marketplace.pledges.models import RefundFailure
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery


def _count(*conditions) -> int:
    return db.session.scalar(select(func.count()).where(*conditions))


@bp.get("/")
@admin_required
def index():
    """Counts that need attention: failed and waiting deliveries, repositories whose sync
    failed, shares to pay by hand, refunds that failed."""
    return render_template(
        "admin/index.html",
        failed=_count(WebhookDelivery.status == DeliveryStatus.failed),
        waiting=_count(WebhookDelivery.status == DeliveryStatus.waiting),
        flagged=_count(Repository.sync_status.in_([SyncStatus.failed, SyncStatus.forbidden])),
        manual=_count(PayoutShare.state == ShareState.awaiting_manual_payout),
        refund_failures=_count(RefundFailure.resolved_at.is_(None)))
