"""The fiscal host's admin pages: webhook deliveries (with replay) and sync progress."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.forges.models import Repository, SyncRun, SyncRunStatus, SyncStatus
from marketplace.validation import ascii_int
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50


def admin_required(view):
    """Anonymous visitors are sent to sign in; signed-in non-admins get 403."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _page() -> int:
    page = ascii_int(request.args.get("page", "1"))
    return page if page is not None and 1 <= page <= 100_000 else 1


@bp.get("/")
@admin_required
def index():
    """Counts that need attention."""
    failed = db.session.scalar(select(func.count()).where(WebhookDelivery.status == DeliveryStatus.failed))
    flagged = db.session.scalar(
        select(func.count()).where(Repository.sync_status.in_([SyncStatus.failed, SyncStatus.forbidden]))
    )
    return render_template("admin/index.html", failed=failed, flagged=flagged)


@bp.get("/deliveries")
@admin_required
def deliveries():
    """Webhook deliveries, newest first, optionally by status."""
    status = request.args.get("status")
    stmt = select(WebhookDelivery)
    if status in {s.value for s in DeliveryStatus}:
        stmt = stmt.where(WebhookDelivery.status == DeliveryStatus(status))
    else:
        status = None
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = _page()
    rows = db.session.scalars(
        stmt.order_by(WebhookDelivery.received_at.desc(), WebhookDelivery.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template("admin/deliveries.html", rows=rows, total=total, page=page, status=status,
                           statuses=[s.value for s in DeliveryStatus], page_size=PAGE_SIZE)


@bp.post("/deliveries/<id:delivery_id>/replay")
@admin_required
def replay(delivery_id: int):
    """Process a stored delivery again (after a fix, or to re-apply it)."""
    from marketplace.webhooks.views import enqueue_processing

    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        abort(404)
    delivery.status = DeliveryStatus.pending
    audit.record("webhook.replayed", "webhook_delivery", delivery.id, actor=f"user:{current_user.id}",
                 actor_user_id=current_user.id)
    enqueue_processing(delivery.id, replay=True)
    db.session.commit()
    flash(_("Delivery %(id)s was queued again.", id=delivery.delivery_id))
    return redirect(url_for("admin.deliveries", status=request.args.get("status") or None))


@bp.get("/sync")
@admin_required
def sync():
    """Every repository's sync state and its latest runs with their progress."""
    repos = db.session.scalars(
        select(Repository).options(selectinload(Repository.project))
        .where(Repository.id.in_(select(SyncRun.repository_id)) | Repository.sync_status.in_(
            [SyncStatus.failed, SyncStatus.forbidden, SyncStatus.running]))
        .order_by(Repository.host, Repository.path_key)
    ).all()
    runs = db.session.scalars(
        select(SyncRun).options(selectinload(SyncRun.repository)).order_by(SyncRun.id.desc()).limit(PAGE_SIZE)
    ).all()
    return render_template("admin/sync.html", repos=repos, runs=runs, waiting=SyncRunStatus.waiting)


@bp.post("/sync/<id:repository_id>")
@admin_required
def sync_now(repository_id: int):
    """Queue a sync of one repository (full with ``full=1``)."""
    from jobs.sync import enqueue_sync

    repo = db.session.get(Repository, repository_id)
    if repo is None:
        abort(404)
    full = request.form.get("full") == "1"
    run = enqueue_sync(repo, full=full)
    audit.record("sync.requested", "repository", repo.id, actor=f"user:{current_user.id}",
                 actor_user_id=current_user.id, details={"full": full, "run": run.id})
    db.session.commit()
    flash(_("A sync of %(repo)s was queued.", repo=repo.full_name))
    return redirect(url_for("admin.sync"))


@bp.post("/items/<id:item_id>/links")
@admin_required
def link(item_id: int):
    """Link a pull request of the item's repository to the item by hand (closes it)."""
    from marketplace.backlog.models import BacklogItem, PullRequest
    from marketplace.backlog.service import link_by_hand

    item = db.session.get(BacklogItem, item_id)
    if item is None:
        abort(404)
    number = ascii_int(request.form.get("number", ""))
    pull = None
    if number is not None and number > 0:
        pull = db.session.scalar(select(PullRequest).where(
            PullRequest.repository_id == item.repository_id, PullRequest.number == number))
    if pull is None:
        flash(_("There is no pull request with that number in %(repo)s.", repo=item.repository.full_name))
        return redirect(url_for("backlog.item", item_id=item.id)), 303
    link_by_hand(pull, item, actor=f"user:{current_user.id}")
    db.session.commit()
    flash(_("Pull request #%(number)s is linked.", number=pull.number))
    return redirect(url_for("backlog.item", item_id=item.id))


@bp.post("/links/<id:link_id>/remove")
@admin_required
def unlink(link_id: int):
    """Remove a link by hand; sync will not bring it back."""
    from marketplace.backlog.models import ItemLink
    from marketplace.backlog.service import unlink_by_hand

    row = db.session.get(ItemLink, link_id)
    if row is None:
        abort(404)
    item_id = row.item_id
    unlink_by_hand(row, actor=f"user:{current_user.id}")
    db.session.commit()
    flash(_("The link was removed."))
    return redirect(url_for("backlog.item", item_id=item_id) if item_id else url_for("admin.index"))
