"""The fiscal host's admin pages: webhook deliveries (with replay), sync progress, projects, accounts,
pledges, payouts to pay by hand, certifications and the audit log."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.access import admin_required
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.forges.models import Repository, SyncRun, SyncRunStatus, SyncStatus
from marketplace.i18n import format_money
from marketplace.validation import ascii_int
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50


def _page() -> int:
    page = ascii_int(request.args.get("page", "1"))
    return page if page is not None and 1 <= page <= 100_000 else 1


@bp.get("/")
@admin_required
def index():
    """Counts that need attention."""
    failed = db.session.scalar(select(func.count()).where(WebhookDelivery.status == DeliveryStatus.failed))
    waiting = db.session.scalar(select(func.count()).where(WebhookDelivery.status == DeliveryStatus.waiting))
    flagged = db.session.scalar(
        select(func.count()).where(Repository.sync_status.in_([SyncStatus.failed, SyncStatus.forbidden]))
    )
    from marketplace.payouts.models import PayoutShare, ShareState

    manual = db.session.scalar(
        select(func.count()).where(PayoutShare.state == ShareState.awaiting_manual_payout))
    from marketplace.pledges.models import RefundFailure

    refund_failures = db.session.scalar(select(func.count()).where(RefundFailure.resolved_at.is_(None)))
    return render_template("admin/index.html", failed=failed, waiting=waiting, flagged=flagged, manual=manual,
                           refund_failures=refund_failures)


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
    from marketplace.webhooks.service import enqueue_processing

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
    from marketplace.forges.sync import enqueue_sync

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


def _manager_of(project):
    """Maintainers of ``project`` and admins; others get 403 (anonymous: sign in)."""
    from marketplace.projects.service import may_manage

    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=request.referrer or "/"))
    if not may_manage(current_user, project):
        abort(403)
    return None


@bp.post("/items/<id:item_id>/links")
def link(item_id: int):
    """A maintainer of the item's project (or an admin) links a pull request of
    the item's repository to the item by hand (it closes the item)."""
    from marketplace.backlog.models import BacklogItem, PullRequest
    from marketplace.backlog.service import link_by_hand

    item = db.session.get(BacklogItem, item_id)
    if item is None:
        abort(404)
    if (refused := _manager_of(item.repository.project)) is not None:
        return refused
    if item.deleted_at is not None:
        abort(410)  # deleted on the forge: nothing attaches to it
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


@bp.post("/items/<id:item_id>/close-decision")
def decide_close(item_id: int):
    """A maintainer of the item's project (or an admin) decides what a close
    the forge gave no known reason for meant: completed or not planned."""
    from marketplace.backlog.ending import decide_unknown_close
    from marketplace.backlog.models import BacklogItem

    item = db.session.get(BacklogItem, item_id)
    if item is None:
        abort(404)
    if (refused := _manager_of(item.repository.project)) is not None:
        return refused
    try:
        decide_unknown_close(item, request.form.get("decision", ""), actor=f"user:{current_user.id}",
                             actor_user_id=current_user.id)
    except ValueError as exc:
        flash(str(exc))
        return redirect(url_for("backlog.item", item_id=item.id)), 303
    db.session.commit()
    flash(_("Your decision on the close is recorded."))
    return redirect(url_for("backlog.item", item_id=item.id))


@bp.post("/items/<id:item_id>/work-target")
def work_target(item_id: int):
    """A maintainer of the item's project (or an admin) names the backlog item
    where the work of a duplicate or moved item went (by its id)."""
    from marketplace.backlog.ending import name_work_target
    from marketplace.backlog.models import BacklogItem

    item = db.session.get(BacklogItem, item_id)
    if item is None:
        abort(404)
    if (refused := _manager_of(item.repository.project)) is not None:
        return refused
    target_id = ascii_int(request.form.get("target", ""))
    target = db.session.get(BacklogItem, target_id) if target_id else None
    try:
        if target is None:
            raise ValueError(_("Name an open item of the backlog."))
        name_work_target(item, target, actor=f"user:{current_user.id}", actor_user_id=current_user.id)
    except ValueError as exc:
        flash(str(exc))
        return redirect(url_for("backlog.item", item_id=item.id)), 303
    db.session.commit()
    flash(_("Its funders are offered to move their pledges there."))
    return redirect(url_for("backlog.item", item_id=item.id))


@bp.post("/links/<id:link_id>/remove")
def unlink(link_id: int):
    """A maintainer of the linked item's project (or an admin) removes a link
    by hand; sync will not bring it back."""
    from marketplace.backlog.models import ItemLink
    from marketplace.backlog.service import unlink_by_hand

    row = db.session.get(ItemLink, link_id)
    if row is None:
        abort(404)
    # The item's project decides what closes its items (cross-project links too).
    project = row.item.repository.project if row.item is not None else row.pull_request.repository.project
    if (refused := _manager_of(project)) is not None:
        return refused
    item_id = row.item_id
    unlink_by_hand(row, actor=f"user:{current_user.id}")
    db.session.commit()
    flash(_("The link was removed."))
    return redirect(url_for("backlog.item", item_id=item_id) if item_id else url_for("admin.index"))


def _search() -> str:
    return (request.args.get("q") or "").strip()[:200]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _paged(stmt, order):
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = _page()
    rows = db.session.scalars(stmt.order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return rows, total, page


@bp.get("/projects")
@admin_required
def projects():
    """Member projects: admission and maintainers; searchable by name or slug."""
    from marketplace.projects.models import MemberProject
    from marketplace.projects.service import maintainer_counts

    q = _search()
    stmt = select(MemberProject)
    if q:
        stmt = stmt.where(func.lower(MemberProject.name).like(_like(q.lower()), escape="\\")
                          | MemberProject.slug.like(_like(q.lower()), escape="\\"))
    rows, total, page = _paged(stmt, [func.lower(MemberProject.name), MemberProject.id])
    return render_template("admin/projects.html", rows=rows, total=total, page=page, q=q,
                           counts=maintainer_counts(), page_size=PAGE_SIZE)


@bp.post("/projects/<slug>/admit")
@admin_required
def admit_project(slug: str):
    from marketplace.projects.models import MemberProject
    from marketplace.projects.service import admit

    project = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
    if project is None:
        abort(404)
    admit(project, actor=current_user._get_current_object())
    db.session.commit()
    flash(_("%(project)s is admitted to the commons.", project=project.name))
    return redirect(url_for("admin.projects", q=request.args.get("q") or None))


@bp.post("/projects/<slug>/maintainers")
@admin_required
def name_maintainer(slug: str):
    """Name a maintainer of a project by the e-mail address of their account."""
    from marketplace.accounts.service import user_by_email
    from marketplace.projects.models import MemberProject
    from marketplace.projects.service import add_maintainer

    project = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
    if project is None:
        abort(404)
    person = user_by_email(request.form.get("email", "")[:320])
    if person is None:
        flash(_("No account uses that e-mail address."))
        return redirect(url_for("admin.projects", q=slug)), 303
    add_maintainer(project, person, granted_by=f"user:{current_user.id}", actor_user_id=current_user.id)
    db.session.commit()
    flash(_("%(name)s maintains %(project)s.", name=person.display_name, project=project.name))
    return redirect(url_for("admin.projects", q=slug))


@bp.get("/claims")
@admin_required
def claims():
    """Maintainership claims waiting for a decision, then the decided ones."""
    from marketplace.projects.models import MaintainershipClaim

    rows, total, page = _paged(select(MaintainershipClaim),
                               [(MaintainershipClaim.status != "requested"), MaintainershipClaim.id.desc()])
    return render_template("admin/claims.html", rows=rows, total=total, page=page, page_size=PAGE_SIZE)


@bp.post("/claims/<id:claim_id>/<any(confirm, reject):decision>")
@admin_required
def decide_claim(claim_id: int, decision: str):
    from marketplace.projects.models import MaintainershipClaim
    from marketplace.projects.service import ProjectError, decide

    row = db.session.get(MaintainershipClaim, claim_id)
    if row is None:
        abort(404)
    try:
        decide(row, confirm=decision == "confirm", admin=current_user._get_current_object())
    except ProjectError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.claims")), 303
    db.session.commit()
    flash(_("The claim is %(status)s.", status=row.status))
    return redirect(url_for("admin.claims"))


@bp.get("/users")
@admin_required
def users():
    """Accounts, searchable by name or e-mail."""
    from marketplace.accounts.models import User

    q = _search()
    stmt = select(User)
    if q:
        stmt = stmt.where(func.lower(User.email).like(_like(q.lower()), escape="\\")
                          | func.lower(User.display_name).like(_like(q.lower()), escape="\\"))
    rows, total, page = _paged(stmt, [User.id])
    return render_template("admin/users.html", rows=rows, total=total, page=page, q=q, page_size=PAGE_SIZE)


@bp.post("/users/<id:user_id>/admin")
@admin_required
def toggle_admin(user_id: int):
    """Grant or withdraw the admin role (not one's own)."""
    from marketplace.accounts.models import User

    person = db.session.get(User, user_id)
    if person is None:
        abort(404)
    if person.id == current_user.id:
        flash(_("You cannot change your own admin role."))
        return redirect(url_for("admin.users")), 303
    person.is_admin = not person.is_admin
    audit.record("user.admin_granted" if person.is_admin else "user.admin_withdrawn", "user_account", person.id,
                 actor=f"user:{current_user.id}", actor_user_id=current_user.id)
    db.session.commit()
    return redirect(url_for("admin.users", q=request.args.get("q") or None))


@bp.get("/organisations")
@admin_required
def organisations():
    from marketplace.accounts.models import Organisation

    q = _search()
    stmt = select(Organisation)
    if q:
        stmt = stmt.where(func.lower(Organisation.name).like(_like(q.lower()), escape="\\"))
    rows, total, page = _paged(stmt, [func.lower(Organisation.name), Organisation.id])
    return render_template("admin/organisations.html", rows=rows, total=total, page=page, q=q,
                           page_size=PAGE_SIZE)


@bp.get("/audit")
@admin_required
def audit_log():
    """The audit log, newest first; search by action, actor, object or request id."""
    from marketplace.audit.models import AuditEvent

    q = _search()
    stmt = select(AuditEvent)
    if q:
        pattern = _like(q.lower())
        stmt = stmt.where(func.lower(AuditEvent.action).like(pattern, escape="\\")
                          | func.lower(AuditEvent.actor).like(pattern, escape="\\")
                          | func.lower(AuditEvent.object_type + ":" + func.coalesce(AuditEvent.object_id, ""))
                          .like(pattern, escape="\\")
                          | func.lower(func.coalesce(AuditEvent.origin, "")).like(pattern, escape="\\"))
    rows, total, page = _paged(stmt, [AuditEvent.occurred_at.desc(), AuditEvent.id.desc()])
    return render_template("admin/audit.html", rows=rows, total=total, page=page, q=q, page_size=PAGE_SIZE)


@bp.get("/pledges")
@admin_required
def pledges_list():
    """Pledges, bank transfers awaiting confirmation first."""
    from marketplace.pledges.models import Pledge, PledgeState, Rail, RefundFailure

    awaiting = (Pledge.rail == Rail.bank_transfer) & (Pledge.state == PledgeState.pending)
    # A refund that failed needs the fiscal host first: flagged rows come on top.
    failed_refund = Pledge.id.in_(select(RefundFailure.pledge_id).where(RefundFailure.resolved_at.is_(None)))
    rows, total, page = _paged(select(Pledge), [failed_refund.desc(), awaiting.desc(), Pledge.id.desc()])
    failures: dict[int, list] = {}
    for failure in db.session.scalars(select(RefundFailure).where(
            RefundFailure.pledge_id.in_([p.id for p in rows]), RefundFailure.resolved_at.is_(None))
            .order_by(RefundFailure.id)):
        failures.setdefault(failure.pledge_id, []).append(failure)
    return render_template("admin/pledges.html", rows=rows, total=total, page=page, q="", page_size=PAGE_SIZE,
                           refund_failures=failures,
                           paid_shares=_paid_shares([p.id for p in rows if p.state is PledgeState.released]))


def _paid_shares(pledge_ids: list[int]) -> dict[int, list]:
    """Per released pledge: the paid shares of the payout that covered it (a refund after payout names one)."""
    from marketplace.payouts.models import PayoutPledge, PayoutShare, ShareState

    shares: dict[int, list] = {}
    if pledge_ids:
        for pledge_id, share in db.session.execute(
                select(PayoutPledge.pledge_id, PayoutShare)
                .join(PayoutShare, PayoutShare.payout_id == PayoutPledge.payout_id)
                .where(PayoutPledge.pledge_id.in_(pledge_ids), PayoutShare.state == ShareState.paid)
                .options(selectinload(PayoutShare.recipient)).order_by(PayoutShare.id)):
            shares.setdefault(pledge_id, []).append(share)
    return shares


@bp.post("/pledges/<id:pledge_id>/confirm")
@admin_required
def confirm_pledge(pledge_id: int):
    """Record that a bank transfer arrived (amount as typed, date, bank reference).

    Another amount than pledged is held only when the admin ticks "record what
    arrived" (``other_amount``); the pledge then records it.
    """
    from flask_babel import get_locale

    from marketplace.money import MoneyError, parse_amount
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Pledge

    pledge = db.session.get(Pledge, pledge_id)
    if pledge is None:
        abort(404)
    reference = (request.form.get("reference") or "").strip()[:100]
    received_on = (request.form.get("received_on") or "").strip()[:10]
    try:
        money = parse_amount(request.form.get("amount", ""), pledge.currency, str(get_locale()),
                             (pledge.currency,))
        if not reference or not received_on:
            raise MoneyError(_("Give the bank reference and the date the money arrived."))
        moved = pledges.confirm_transfer(pledge.id, money, reference=reference, received_on=received_on,
                                         actor=f"user:{current_user.id}",
                                         accept_other_amount=request.form.get("other_amount") == "y")
    except (MoneyError, pledges.PledgeError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.pledges_list")), 303
    db.session.commit()
    if not moved:
        flash(_("Pledge %(id)s was confirmed already: nothing changed.", id=pledge.id), "error")
        return redirect(url_for("admin.pledges_list")), 303
    flash(_("Pledge %(id)s is held: %(amount)s.", id=pledge.id,
            amount=format_money(db.session.get(Pledge, pledge.id).amount_minor, pledge.currency)))
    return redirect(url_for("admin.pledges_list"))


@bp.post("/pledges/<id:pledge_id>/refund")
@admin_required
def refund_pledge(pledge_id: int):
    """Refund a pledge (all or part) with a reason; bank transfers need the reference of the transfer back."""
    from flask_babel import get_locale

    from marketplace.money import MoneyError, parse_amount
    from marketplace.payments.stripe_client import PaymentsUnavailable
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Pledge

    pledge = db.session.get(Pledge, pledge_id)
    if pledge is None:
        abort(404)
    reason = (request.form.get("reason") or "").strip()[:500]
    # What the pledge had had back when the page was shown: required, so a
    # second submission (a double click, a reload, a form without it) refunds nothing.
    seen = ascii_int(request.form.get("seen_refunded", ""))
    try:
        if seen is None:
            raise MoneyError(_("The form did not say what this pledge had had back when it was shown: open the "
                               "pledges page again. Nothing was refunded."))
        money = parse_amount(request.form.get("amount", ""), pledge.currency, str(get_locale()), (pledge.currency,))
        if not reason:
            raise MoneyError(_("Give the reason for the refund."))
        pledges.refund_through_rail(pledge.id, money.amount_minor, reason=reason, actor=f"user:{current_user.id}",
                                    offline_reference=(request.form.get("reference") or "").strip()[:100] or None,
                                    seen_refunded_minor=seen)
    except (MoneyError, pledges.PledgeError, PaymentsUnavailable) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.pledges_list")), 303
    db.session.commit()
    flash(_("Pledge %(id)s: refund recorded.", id=pledge.id))
    return redirect(url_for("admin.pledges_list"))


@bp.post("/pledges/<id:pledge_id>/refund-after-payout")
@admin_required
def refund_after_payout(pledge_id: int):
    """Refund (part of) a pledge whose money was paid out: by reversing a share's
    Stripe transfer, or from the commons' funds with a receivable on the recipient.

    ``seen_refunded`` is what the pledge had had back when the page was shown:
    a second submission of the same form (a double click, a reload) finds it
    changed and refunds nothing more.
    """
    from flask_babel import get_locale

    from marketplace.money import MoneyError, parse_amount
    from marketplace.payments.stripe_client import PaymentsUnavailable, TransferRefused
    from marketplace.payouts import service as payouts
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Pledge

    pledge = db.session.get(Pledge, pledge_id)
    if pledge is None:
        abort(404)
    back = url_for("admin.pledges_list")
    seen = ascii_int(request.form.get("seen_refunded", ""))
    share_id = ascii_int(request.form.get("share_id", ""))
    path = request.form.get("path", "")
    reference = (request.form.get("reference") or "").strip()[:100] or None
    try:
        if seen is None:
            raise MoneyError(_("This pledge was refunded meanwhile; check it again. Nothing was refunded."))
        if share_id is None or not 0 < share_id < 2**31:
            raise MoneyError(_("Choose the paid share the refund comes from."))
        money = parse_amount(request.form.get("amount", ""), pledge.currency, str(get_locale()), (pledge.currency,))
        refund_id = payouts.refund_after_payout(pledge.id, money.amount_minor, path=path, share_id=share_id,
                                                admin=current_user._get_current_object(),
                                                offline_reference=reference, seen_refunded_minor=seen)
    except (MoneyError, payouts.PayoutError, pledges.PledgeError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back, code=303)
    except (PaymentsUnavailable, TransferRefused) as exc:
        db.session.rollback()
        flash(_("Stripe did not do it: %(reason)s. Nothing was recorded; try again later.", reason=str(exc)))
        return redirect(back, code=303)
    db.session.commit()
    flash(_("Pledge %(id)s: refund after payout recorded (%(refund)s).", id=pledge.id, refund=refund_id))
    return redirect(back, code=303)


# --- certifications and payouts ---------------------------------------------------------

@bp.route("/certifications", methods=["GET", "POST"])
@admin_required
def certifications():
    """Grant a global certification (the commons' training) by e-mail; every certification, newest first."""
    from marketplace.claims import certification
    from marketplace.claims.forms import certification_form
    from marketplace.claims.models import Certification

    form = certification_form()
    error = None
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                cert = certification.grant_by_email(form.email.data, issuer=current_user._get_current_object(),
                                                    project_id=None, valid_until=form.expires_on.data,
                                                    note=form.note.data or "")
            except certification.CertificationError as exc:
                db.session.rollback()
                error = str(exc)
            else:
                db.session.commit()
                flash(_("%(name)s is certified for every member project.", name=cert.user.display_name))
                return redirect(url_for("admin.certifications"), code=303)
        else:
            error = _("Please correct the marked fields.")
    rows, total, page = _paged(
        select(Certification).options(selectinload(Certification.user), selectinload(Certification.project),
                                      selectinload(Certification.issued_by)),
        [Certification.revoked_at.is_not(None), Certification.issued_at.desc(), Certification.id.desc()])
    return render_template("admin/certifications.html", form=form, error=error, rows=rows, total=total,
                           page=page, q="", page_size=PAGE_SIZE), 400 if request.method == "POST" else 200


@bp.post("/certifications/<id:certification_id>/revoke")
@admin_required
def revoke_certification(certification_id: int):
    """End a certification now (global or of a project)."""
    from marketplace.claims import certification
    from marketplace.claims.models import Certification

    cert = db.session.get(Certification, certification_id)
    if cert is None:
        abort(404)
    certification.revoke(cert, actor=current_user._get_current_object())
    db.session.commit()
    flash(_("The certification of %(name)s is revoked.", name=cert.user.display_name))
    return redirect(url_for("admin.certifications"), code=303)


@bp.get("/payouts")
@admin_required
def payouts():
    """Money owed that waits for someone: shares to pay by hand (with the recipient's
    details), shares waiting for an account or a certification, failed or reversed
    transfers, and payouts flagged for a look."""
    from marketplace.payouts.models import (
        Payout,
        PayoutAccount,
        PayoutShare,
        PayoutState,
        ShareState,
    )
    from marketplace.timeutil import utcnow

    def shares(*states):
        return db.session.scalars(
            select(PayoutShare).where(PayoutShare.state.in_(states))
            .options(selectinload(PayoutShare.recipient), selectinload(PayoutShare.payout).selectinload(Payout.item))
            .order_by(PayoutShare.id).limit(PAGE_SIZE * 4)).all()

    manual = shares(ShareState.awaiting_manual_payout)
    accounts = {a.user_id: a for a in db.session.scalars(
        select(PayoutAccount).where(PayoutAccount.user_id.in_({s.recipient_id for s in manual})))} if manual else {}
    payouts_waiting = db.session.scalars(
        select(Payout).where(Payout.state == PayoutState.awaiting_certification)
        .options(selectinload(Payout.item), selectinload(Payout.suggested_recipient))
        .order_by(Payout.id).limit(PAGE_SIZE * 4)).all()
    flagged = db.session.scalars(
        select(Payout).where(Payout.flagged_at.is_not(None)).options(selectinload(Payout.item))
        .order_by(Payout.flagged_at.desc()).limit(PAGE_SIZE * 4)).all()
    return render_template(
        "admin/payouts.html", manual=manual, accounts=accounts,
        waiting=shares(ShareState.awaiting_account, ShareState.awaiting_certification),
        payouts_waiting=payouts_waiting, failed=shares(ShareState.failed, ShareState.reversed), flagged=flagged,
        today=utcnow().date().isoformat(),
        paid=db.session.scalars(
            select(PayoutShare).where(PayoutShare.state == ShareState.paid, PayoutShare.paid_at.is_not(None))
            .options(selectinload(PayoutShare.recipient), selectinload(PayoutShare.payout).selectinload(Payout.item))
            .order_by(PayoutShare.paid_at.desc(), PayoutShare.id.desc()).limit(PAGE_SIZE * 2)).all())


@bp.post("/payouts/shares/<id:share_id>/paid")
@admin_required
def record_manual_payout(share_id: int):
    """The fiscal host paid a share by bank or mobile-money transfer: its reference and date."""
    from datetime import date

    from marketplace.payouts import service as payouts
    from marketplace.payouts.models import PayoutShare

    if db.session.get(PayoutShare, share_id) is None:
        abort(404)
    back = url_for("admin.payouts")
    try:
        paid_on = date.fromisoformat((request.form.get("paid_on") or "").strip()[:10])
    except ValueError:
        flash(_("Give the date of the transfer."))
        return redirect(back, code=303)
    try:
        payouts.record_manual_payout(share_id, reference=(request.form.get("reference") or "")[:300],
                                     paid_on=paid_on, admin=current_user._get_current_object())
    except payouts.PayoutError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back, code=303)
    db.session.commit()
    flash(_("The transfer is recorded; the recipient is told."))
    return redirect(back, code=303)


@bp.post("/payouts/<id:payout_id>/returned")
@admin_required
def return_manual_payout(payout_id: int):
    """An executed manual payout's transfer came back ("returned / not paid"): undo it, with a reason."""
    from marketplace.payouts import service as payouts
    from marketplace.payouts.models import Payout

    if db.session.get(Payout, payout_id) is None:
        abort(404)
    back = url_for("admin.payouts")
    try:
        payouts.return_manual_payout(payout_id, reason=(request.form.get("reason") or "")[:600],
                                     admin=current_user._get_current_object())
    except payouts.PayoutError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back, code=303)
    db.session.commit()
    flash(_("The payout is recorded as returned: its money is in escrow again and the recipients are told."))
    return redirect(back, code=303)
