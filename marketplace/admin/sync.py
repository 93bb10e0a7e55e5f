"""Repository sync: every repository's state with the latest runs, and "sync now"."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.access import admin_required, current_actor
from marketplace.admin.blueprint import PAGE_SIZE, bp
from marketplace.admin.forms import SyncForm
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.forges.models import Repository, SyncRun, SyncRunStatus, SyncStatus
from marketplace.forges.sync import enqueue_sync


@bp.get("/sync")
@admin_required
def sync():
    """Every repository that synced or needs attention, and the latest PAGE_SIZE runs with their progress."""
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
    repo = db.get_or_404(Repository, repository_id)
    form = SyncForm()
    if not form.validate_on_submit():
        abort(400)
    full = form.full.data == "1"
    me = current_actor()
    run = enqueue_sync(repo, full=full)
    audit.record("sync.requested", "repository", repo.id, actor=f"user:{me.id}", actor_user_id=me.id,
                 details={"full": full, "run": run.id})
    db.session.commit()
    flash(_("A sync of %(repo)s was queued.", repo=repo.full_name))
    return redirect(url_for("admin.sync"))
