"""Claims: requested on the item page, decided by maintainers on the claim page,
listed per project and per person; project-level certification by maintainers."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from marketplace.access import project_or_404, refuse_unless_manager
from marketplace.accounts.forms import as_choices
from marketplace.accounts.models import Organisation, OrganisationMember, User
from marketplace.accounts.service import user_by_email
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.search import visible_item
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.forms import (
    CertificationForm,
    ClaimRequestForm,
    DecisionForm,
    ReassignForm,
)
from marketplace.claims.models import (
    ACTIVE_CLAIM_STATES,
    HOLDING_CLAIM_STATES,
    Certification,
    Claim,
    ClaimState,
)
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.markdown import render_markdown
from marketplace.projects.models import MemberProject
from marketplace.projects.service import may_manage
from marketplace.timeutil import utcnow

bp = Blueprint("claims", __name__)

LIST_LIMIT = 200  # rows on a list page: enough for a project's open claims, light on a slow connection

CLAIM_STATE_LABELS = {
    ClaimState.requested: _l("requested"),
    ClaimState.approved: _l("approved"),
    ClaimState.submitted: _l("submitted (a pull request is linked)"),
    ClaimState.completed: _l("completed"),
    ClaimState.rejected: _l("rejected"),
    ClaimState.withdrawn: _l("withdrawn"),
    ClaimState.lapsed: _l("lapsed"),
    ClaimState.cancelled: _l("cancelled (the item ended on the forge without the work)"),
}


@bp.app_template_filter("claim_state")
def claim_state_label(state: ClaimState) -> str:
    return str(CLAIM_STATE_LABELS.get(state, state.value))


def _see_other(endpoint: str, **values):
    return redirect(url_for(endpoint, **values), code=303)


def _claim_or_404(claim_id: int) -> Claim:
    """The claim; 404 when its item is hidden or deleted, unless the viewer manages the project."""
    claim = db.session.get(Claim, claim_id)
    if claim is None:
        abort(404)
    item = claim.item
    if (item.hidden or item.deleted_at is not None) and not may_manage(current_user, item.repository.project):
        abort(404)
    return claim


def _me() -> User:
    return current_user._get_current_object()


# --- the item page ----------------------------------------------------------------

def _implementor_firms(user_id: int) -> list[Organisation]:
    return list(db.session.scalars(
        select(Organisation).join(OrganisationMember).where(
            OrganisationMember.user_id == user_id, OrganisationMember.accepted_at.is_not(None),
            Organisation.kind == "implementor").order_by(Organisation.name)))


def claim_form() -> ClaimRequestForm:
    form = ClaimRequestForm(prefix="claim")
    firms = _implementor_firms(current_user.id)
    form.organisation_id.choices = as_choices([("", _("Myself"))] + [(str(o.id), o.name) for o in firms])
    return form


def claim_section(item: BacklogItem, *, form: ClaimRequestForm | None = None, error: str | None = None) -> dict:
    """What the item page shows about claims: the latest claims, and the request form for implementors."""
    rows = db.session.scalars(
        select(Claim).where(Claim.item_id == item.id).options(selectinload(Claim.claimant))
        .order_by(case((Claim.state.in_(ACTIVE_CLAIM_STATES), 0), else_=1), Claim.created_at.desc(),
                  Claim.id.desc()).limit(20)).all()
    implementor = current_user.is_authenticated and current_user.is_implementor
    if form is None and implementor:
        form = claim_form()
    return {"rows": rows, "form": form if implementor else None, "error": error,
            "solved": claims.item_is_solved(item)}


@bp.post("/items/<id:item_id>/claims")
@login_required
def request_claim(item_id: int):
    """An implementor asks to do the item; bad input shows the item page again with the errors."""
    from marketplace.backlog.views import render_item

    item = visible_item(item_id)
    if item is None:
        abort(404)
    form = claim_form()
    if not form.validate_on_submit():
        return render_item(item, claim_form=form, claim_error=_("Please correct the marked fields."), status=400)
    firm = int(form.organisation_id.data) if form.organisation_id.data.isdigit() else None
    try:
        claim = claims.request_claim(item, _me(), plan=form.plan.data, estimate_days=form.estimate_days.data,
                                     deadline=form.deadline.data, organisation_id=firm)
    except claims.ClaimError as exc:
        db.session.rollback()
        return render_item(visible_item(item_id), claim_form=form, claim_error=str(exc), status=400)
    db.session.commit()
    flash(_("Your claim is sent. A maintainer of the project decides; you will get an e-mail."))
    return _see_other("claims.show", claim_id=claim.id)


@bp.post("/items/<id:item_id>/claims/team")
def set_open_to_team(item_id: int):
    """A maintainer (or an admin) opens the item to a team (several approved claims) or closes it again."""
    item = visible_item(item_id)
    if item is None:
        abort(404)
    back = url_for("backlog.item", item_id=item.id)
    if (refusal := refuse_unless_manager(item.repository.project, back=back)) is not None:
        return refusal
    open_ = request.form.get("open") == "1"
    try:
        claims.set_open_to_team(item, open_, maintainer=_me())
    except claims.ClaimError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back, code=303)
    db.session.commit()
    flash(_("Several implementors may now be approved on this item.") if open_
          else _("One approved claim at a time on this item."))
    return redirect(back, code=303)


# --- one claim ------------------------------------------------------------------------

def _reassign_candidates(claim: Claim) -> list[User]:
    """Other implementors with a requested claim on the same item."""
    return list(db.session.scalars(
        select(User).join(Claim, Claim.claimant_id == User.id).where(
            Claim.item_id == claim.item_id, Claim.state == ClaimState.requested, User.id != claim.claimant_id,
            User.is_implementor.is_(True)).order_by(User.display_name, User.id)))


def _reassign_form(claim: Claim) -> ReassignForm:
    form = ReassignForm(prefix="reassign")
    form.to_user_id.choices = as_choices(
        [("", _("Nobody from this list"))] + [(str(u.id), u.display_name) for u in _reassign_candidates(claim)])
    return form


@bp.get("/claims/<id:claim_id>")
def show(claim_id: int):
    """A claim: its item, plan, estimate, deadline, state and linked pull request; the
    actions the viewer may take (maintainers decide, the claimant withdraws)."""
    claim = _claim_or_404(claim_id)
    manager = may_manage(current_user, claim.item.repository.project)
    claimant = current_user.is_authenticated and current_user.id == claim.claimant_id
    return render_template(
        "claims/show.html", claim=claim, item=claim.item, manager=manager, claimant=claimant,
        plan_html=render_markdown(claim.plan), payouts=_claimant_payouts(claim),
        net_paid=_claimant_net_paid(claim), unverified_pull=claims.unverified_solver(claim),
        approve_form=DecisionForm(prefix="approve"), reject_form=DecisionForm(prefix="reject"),
        reassign_form=_reassign_form(claim) if manager and claim.state in HOLDING_CLAIM_STATES else None,
        open_states=ACTIVE_CLAIM_STATES, holding_states=HOLDING_CLAIM_STATES)


def _managed_claim(claim_id: int) -> tuple[Claim, object]:
    claim = _claim_or_404(claim_id)
    return claim, refuse_unless_manager(claim.item.repository.project,
                                        back=url_for("claims.show", claim_id=claim.id))


def _note(form: DecisionForm | ReassignForm) -> str | None:
    return (form.note.data or "").strip() or None


@bp.post("/claims/<id:claim_id>/approve")
def approve(claim_id: int):
    """A maintainer lets the claimant do the item."""
    return _decide(claim_id, "approve", claims.approve, _("The claim is approved; the implementor is told."))


@bp.post("/claims/<id:claim_id>/reject")
def reject(claim_id: int):
    """A maintainer refuses a claim, or ends an approved one, with a note."""
    return _decide(claim_id, "reject", claims.reject, _("The claim is rejected; the implementor is told."))


def _decide(claim_id: int, prefix: str, decision, done: str):
    """Apply a maintainer's ``decision`` (with its optional note) and say ``done``, or why not."""
    claim, refusal = _managed_claim(claim_id)
    if refusal is not None:
        return refusal
    form = DecisionForm(prefix=prefix)
    if not form.validate_on_submit():
        flash(_("The note is too long; nothing was changed."))
        return _see_other("claims.show", claim_id=claim.id)
    try:
        decision(claim, maintainer=_me(), note=_note(form))
    except claims.ClaimError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _see_other("claims.show", claim_id=claim_id)
    db.session.commit()
    flash(done)
    return _see_other("claims.show", claim_id=claim_id)


@bp.post("/claims/<id:claim_id>/reassign")
def reassign(claim_id: int):
    """A maintainer moves an approved claim to another implementor: one who asked
    for the item (chosen from a list) or one named by the e-mail of their account."""
    claim, refusal = _managed_claim(claim_id)
    if refusal is not None:
        return refusal
    form = _reassign_form(claim)
    target, problem = None, None
    if not form.validate_on_submit():
        problem = _("Please check the form; nothing was changed.")
    elif form.to_user_id.data and form.email.data:
        problem = _("Choose someone from the list or give an e-mail address, not both.")
    elif form.to_user_id.data:
        target = db.session.get(User, int(form.to_user_id.data))
    elif form.email.data:
        target = user_by_email(form.email.data)
        if target is None or not target.is_implementor:
            problem = _("No implementor account uses that e-mail address.")
    else:
        problem = _("Choose who takes the claim over.")
    if problem is not None:
        flash(problem)
        return _see_other("claims.show", claim_id=claim.id)
    try:
        new_claim = claims.reassign(claim, target, maintainer=_me(), note=_note(form))
    except claims.ClaimError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _see_other("claims.show", claim_id=claim_id)
    db.session.commit()
    flash(_("The item is now claimed by %(name)s.", name=target.display_name))
    return _see_other("claims.show", claim_id=new_claim.id)


@bp.post("/claims/<id:claim_id>/withdraw")
@login_required
def withdraw(claim_id: int):
    """The claimant gives the item up."""
    claim = _claim_or_404(claim_id)
    if claim.claimant_id != current_user.id:
        abort(403)
    try:
        claims.withdraw(claim, user=_me())
    except claims.ClaimError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _see_other("claims.show", claim_id=claim_id)
    db.session.commit()
    flash(_("You withdrew your claim."))
    return _see_other("claims.show", claim_id=claim_id)


# --- lists -------------------------------------------------------------------------------

@bp.get("/projects/<slug>/claims")
def project_claims(slug: str):
    """Maintainers: the open (requested, approved, submitted) claims on the project's items, requests first."""
    project = project_or_404(slug)
    if (refusal := refuse_unless_manager(project, back=request.path)) is not None:
        return refusal
    order = case((Claim.state == ClaimState.requested, 0), (Claim.state == ClaimState.approved, 1), else_=2)
    rows = db.session.scalars(
        select(Claim).join(BacklogItem, BacklogItem.id == Claim.item_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(Repository.project_id == project.id, Claim.state.in_(ACTIVE_CLAIM_STATES))
        .options(selectinload(Claim.claimant), selectinload(Claim.item))
        .order_by(order, Claim.deadline, Claim.id).limit(LIST_LIMIT)).all()
    return render_template("claims/project.html", project=project, rows=rows, limit=LIST_LIMIT)


@bp.get("/account/claims")
@login_required
def mine():
    """The signed-in person's claims, newest first."""
    rows = db.session.scalars(
        select(Claim).where(Claim.claimant_id == current_user.id)
        .options(selectinload(Claim.item)).order_by(Claim.created_at.desc(), Claim.id.desc())
        .limit(LIST_LIMIT)).all()
    return render_template("claims/mine.html", rows=rows, limit=LIST_LIMIT)


# --- certification ----------------------------------------------------------------------

def default_expiry() -> date:
    return (utcnow() + certification.DEFAULT_VALIDITY).date()


def certification_form(prefix: str = "cert") -> CertificationForm:
    form = CertificationForm(prefix=prefix)
    if form.expires_on.data is None and request.method == "GET":
        form.expires_on.data = default_expiry()
    return form


def grant_from_form(form: CertificationForm, *, project_id: int | None) -> tuple[Certification | None, str | None]:
    """Grant the certification the form asks for (validated already): (the certification, None)
    or (None, a message for the person). ``valid until`` a date includes that whole UTC day."""
    person = user_by_email(form.email.data)
    if person is None or not person.is_implementor:
        return None, _("No implementor account uses that e-mail address.")
    expires_at = datetime.combine(form.expires_on.data + timedelta(days=1), time.min)
    try:
        cert = certification.grant(person, issuer=_me(), project_id=project_id, expires_at=expires_at,
                                   note=form.note.data or "")
    except certification.CertificationError as exc:
        db.session.rollback()
        return None, str(exc)
    return cert, None


@bp.post("/projects/<slug>/certifications")
def grant_project_certification(slug: str):
    """A maintainer (or an admin) certifies an implementor for this project's payouts."""
    project = project_or_404(slug)
    back = url_for("payouts.project_payouts", slug=project.slug)
    if (refusal := refuse_unless_manager(project, back=back)) is not None:
        return refusal
    form = certification_form()
    if not form.validate_on_submit():
        flash(_("Give the implementor's e-mail address and a valid date; nothing was changed."))
        return redirect(back, code=303)
    cert, problem = grant_from_form(form, project_id=project.id)
    if problem is not None:
        flash(problem)
        return redirect(back, code=303)
    db.session.commit()
    flash(_("%(name)s is certified for %(project)s.", name=cert.user.display_name, project=project.name))
    return redirect(back, code=303)


@bp.post("/projects/<slug>/certifications/<id:certification_id>/revoke")
def revoke_project_certification(slug: str, certification_id: int):
    """A maintainer (or an admin) ends a certification of this project (never a global one)."""
    project = project_or_404(slug)
    back = url_for("payouts.project_payouts", slug=project.slug)
    if (refusal := refuse_unless_manager(project, back=back)) is not None:
        return refusal
    cert = db.session.get(Certification, certification_id)
    if cert is None or cert.project_id != project.id:
        abort(404)
    certification.revoke(cert, actor=_me())
    db.session.commit()
    flash(_("The certification of %(name)s is revoked.", name=cert.user.display_name))
    return redirect(back, code=303)


def _claimant_net_paid(claim: Claim) -> list[tuple[str, int]]:
    """What the claimant was paid for the claim's item: (currency, net minor units) of their paid shares."""
    from marketplace.payouts.models import Payout, PayoutShare, ShareState

    return [(currency, int(total)) for currency, total in db.session.execute(
        select(Payout.currency, func.sum(PayoutShare.amount_minor)).join(Payout, Payout.id == PayoutShare.payout_id)
        .where(Payout.item_id == claim.item_id, PayoutShare.recipient_id == claim.claimant_id,
               PayoutShare.state == ShareState.paid)
        .group_by(Payout.currency).order_by(Payout.currency))]


def _claimant_payouts(claim: Claim) -> list:
    """The payouts of the claim's item that name the claimant (suggested, or a share)."""
    from marketplace.payouts.models import Payout, PayoutShare

    return list(db.session.scalars(select(Payout).where(
        Payout.item_id == claim.item_id,
        (Payout.suggested_recipient_id == claim.claimant_id)
        | Payout.id.in_(select(PayoutShare.payout_id).where(PayoutShare.recipient_id == claim.claimant_id)))
        .order_by(Payout.id)))
