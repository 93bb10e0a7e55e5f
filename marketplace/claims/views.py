"""Claims: requested on the item page, decided by maintainers on the claim page,
listed per project and per person; project-level certification by maintainers."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from marketplace.access import current_actor, project_or_404, refuse_unless_manager
from marketplace.accounts.models import User
from marketplace.accounts.service import user_by_email
from marketplace.backlog.search import visible_item
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.forms import (
    DecisionForm,
    ReassignForm,
    TeamForm,
    certification_form,
    claim_draft,
    claim_request_form,
    reassign_form,
)
from marketplace.claims.item_section import draft_key
from marketplace.claims.models import (
    ACTIVE_CLAIM_STATES,
    HOLDING_CLAIM_STATES,
    Certification,
    Claim,
    ClaimState,
)
from marketplace.claims.queries import LIST_LIMIT, claims_of, project_open_claims
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.markdown import render_markdown
from marketplace.payouts.queries import paid_to_on_item, payouts_naming
from marketplace.projects.service import may_manage
from marketplace.roles import service as roles

bp = Blueprint("claims", __name__)

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


# --- the item page ----------------------------------------------------------------

@bp.post("/items/<id:item_id>/claims")
@login_required
def request_claim(item_id: int):
    """An implementor asks to do the item; bad input shows the item page again with the errors."""
    item = visible_item(item_id)
    if item is None:
        abort(404)
    form = claim_request_form(current_user.id)
    if not form.validate_on_submit():
        return _back_to_claim_form(item.id, form, _("Please correct the marked fields."))
    firm = int(form.organisation_id.data) if form.organisation_id.data.isdigit() else None
    try:
        claim = claims.request_claim(item, current_actor(), plan=form.plan.data, estimate_days=form.estimate_days.data,
                                     deadline=form.deadline.data, organisation_id=firm)
    except claims.ClaimError as exc:
        db.session.rollback()
        return _back_to_claim_form(item_id, form, str(exc))
    db.session.commit()
    flash(_("Your claim is sent. A maintainer of the project decides; you will get an e-mail."))
    return _see_other("claims.show", claim_id=claim.id)


def _back_to_claim_form(item_id: int, form, error: str):
    """A refused claim request: 303 to the item's claim form, shown once as typed with
    ``error`` (flashed instead to a person who is offered no claim form)."""
    if current_user.is_implementor:
        session[draft_key(item_id)] = claim_draft(form, error)
    else:
        flash(error, "error")
    return redirect(url_for("backlog.item", item_id=item_id) + "#claim-request", code=303)


@bp.post("/items/<id:item_id>/claims/team")
def set_open_to_team(item_id: int):
    """A maintainer (or an admin) opens the item to a team (several approved claims) or closes it again."""
    item = visible_item(item_id)
    if item is None:
        abort(404)
    back = url_for("backlog.item", item_id=item.id)
    if (refusal := refuse_unless_manager(item.repository.project, back=back)) is not None:
        return refusal
    form = TeamForm()
    if not form.validate_on_submit():
        abort(400)
    open_ = form.open.data == "1"
    on_refusal_go_to(back)  # a ClaimError: flashed, then back to the item (303)
    claims.set_open_to_team(item, open_, maintainer=current_actor())
    db.session.commit()
    flash(_("Several implementors may now be approved on this item.") if open_
          else _("One approved claim at a time on this item."))
    return redirect(back, code=303)


# --- one claim ------------------------------------------------------------------------

@bp.get("/claims/<id:claim_id>")
def show(claim_id: int):
    """A claim: its item, plan, estimate, deadline, state and linked pull request; the
    actions the viewer may take (maintainers decide, the claimant withdraws)."""
    claim = _claim_or_404(claim_id)
    manager = may_manage(current_user, claim.item.repository.project)
    claimant = current_user.is_authenticated and current_user.id == claim.claimant_id
    return render_template(
        "claims/show.html", claim=claim, item=claim.item, manager=manager, claimant=claimant,
        plan_html=render_markdown(claim.plan),
        payouts=payouts_naming(claim.claimant_id, claim.item_id),
        net_paid=paid_to_on_item(claim.claimant_id, claim.item_id), unverified_pull=claims.unverified_solver(claim),
        approve_form=DecisionForm(prefix="approve"), reject_form=DecisionForm(prefix="reject"),
        reassign_form=reassign_form(claim) if manager and claim.state in HOLDING_CLAIM_STATES else None,
        open_states=ACTIVE_CLAIM_STATES, holding_states=HOLDING_CLAIM_STATES,
        merge_status=roles.merge_status(claim))


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
        flash(_("The note is too long; nothing was changed."), "error")
        return _see_other("claims.show", claim_id=claim.id)
    on_refusal_go_to(url_for("claims.show", claim_id=claim.id))  # a ClaimError: flashed, back to the claim
    decision(claim, maintainer=current_actor(), note=_note(form))
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
    form = reassign_form(claim)
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
        flash(problem, "error")
        return _see_other("claims.show", claim_id=claim.id)
    on_refusal_go_to(url_for("claims.show", claim_id=claim.id))  # a ClaimError: flashed, back to the claim
    new_claim = claims.reassign(claim, target, maintainer=current_actor(), note=_note(form))
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
    on_refusal_go_to(url_for("claims.show", claim_id=claim.id))  # a ClaimError: flashed, back to the claim
    claims.withdraw(claim, user=current_actor())
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
    rows = project_open_claims(project.id)
    return render_template("claims/project.html", project=project, rows=rows, limit=LIST_LIMIT)


@bp.get("/account/claims")
@login_required
def mine():
    """The signed-in person's claims, newest first."""
    return render_template("claims/mine.html", rows=claims_of(current_user.id), limit=LIST_LIMIT)


# --- certification ----------------------------------------------------------------------

@bp.post("/projects/<slug>/certifications")
def grant_project_certification(slug: str):
    """A maintainer (or an admin) certifies an implementor for this project's payouts."""
    project = project_or_404(slug)
    back = url_for("payouts.project_payouts", slug=project.slug)
    if (refusal := refuse_unless_manager(project, back=back)) is not None:
        return refusal
    form = certification_form()
    if not form.validate_on_submit():
        flash(_("Give the implementor's e-mail address and a valid date; nothing was changed."), "error")
        return redirect(back, code=303)
    on_refusal_go_to(back)  # a CertificationError: flashed, back to the project's payouts
    cert = certification.grant_by_email(form.email.data, issuer=current_actor(), project_id=project.id,
                                        valid_until=form.expires_on.data, note=form.note.data or "")
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
    certification.revoke(cert, actor=current_actor())
    db.session.commit()
    flash(_("The certification of %(name)s is revoked.", name=cert.user.display_name))
    return redirect(back, code=303)
