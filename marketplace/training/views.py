"""Training pages (issue 19): the project's training page (rule, mentors,
certifications earned), the switch on an item, the mentor's part of a training
claim's page, and a trainee's progress. Server-rendered forms, no JavaScript."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.access import current_actor, project_or_404, refuse_unless_manager
from marketplace.accounts.models import User
from marketplace.accounts.service import user_by_email
from marketplace.backlog.search import visible_item
from marketplace.claims.models import HOLDING_CLAIM_STATES, Claim, ClaimState
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.projects.models import MemberProject
from marketplace.projects.service import may_manage
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.forms import (
    MarkForm,
    MentorApproveForm,
    MentorForm,
    ReviewForm,
    RevokeForm,
    RuleForm,
    TakeOverForm,
)
from marketplace.training.models import EarnedCertification, ReviewVerdict

bp = Blueprint("training", __name__)


def _see_other(endpoint: str, **values):
    return redirect(url_for(endpoint, **values), code=303)


# --- panels other pages include -----------------------------------------------------------

@bp.app_template_global("training_claim_panel")
def claim_panel(claim: Claim) -> dict | None:
    """The training part of a claim's page (``training/_claim_section.html``): None for an
    ordinary claim; else the mentor, the reviews, the standing verdict and the forms the
    viewer may use (a mentor of the project approves; the named mentor reviews; when
    that mentor is gone, another mentor of the project takes the claim over)."""
    record = queries.training_claim_of(claim.id)
    if record is None:
        return None
    viewer = current_user.id if current_user.is_authenticated else None
    may_approve = (viewer is not None and claim.state is ClaimState.requested and viewer != claim.claimant_id
                   and queries.is_mentor(record.project_id, viewer))
    may_review = viewer is not None and viewer == record.mentor_id and claim.state in HOLDING_CLAIM_STATES
    gone = queries.mentor_gone(record)
    may_take_over = (gone and viewer is not None and viewer != claim.claimant_id
                     and queries.is_mentor(record.project_id, viewer))
    return {"record": record, "reviews": queries.reviews_of(claim.id), "mentor_gone": gone,
            "take_over_form": TakeOverForm(prefix="takeover") if may_take_over else None,
            "verdict": queries.standing_verdict(claim.id, record.mentor_id),
            "approve_form": MentorApproveForm(prefix="mentor") if may_approve else None,
            "review_form": ReviewForm(prefix="review") if may_review else None,
            "progress": queries.progress(claim.claimant_id, record.project_id)}


@bp.app_template_global("training_project_panel")
def project_panel(project: MemberProject) -> dict:
    """The training part of a project's page: its rule, mentors and the certifications earned."""
    return {"rule": queries.rule_for(project.id), "mentors": queries.mentors_of(project.id),
            "earned": queries.earned_in(project.id)}


@bp.app_template_global("training_progress_of")
def progress_panel(user_id: int) -> list:
    """A person's training progress per project (``[(project, progress)]``) for their page."""
    return queries.progress_of(user_id)


# --- the item's switch ------------------------------------------------------------------

@bp.post("/items/<id:item_id>/training")
def mark_item(item_id: int):
    """A maintainer (or an admin) marks the item for training, or unmarks it."""
    item = visible_item(item_id)
    if item is None:
        abort(404)
    back = url_for("backlog.item", item_id=item.id)
    if (refusal := refuse_unless_manager(item.repository.project, back=back)) is not None:
        return refusal
    form = MarkForm()
    if not form.validate_on_submit():
        abort(400)
    marked = form.training.data == "1"
    training.mark_item(item, marked, maintainer=current_actor())
    db.session.commit()
    flash(_("This is now a training item.") if marked else _("This is no longer a training item."))
    return redirect(back + "#training", code=303)


# --- the project's training page ----------------------------------------------------------

@bp.get("/projects/<slug>/training")
def project(slug: str):
    """The project's training: rule, mentors, certifications earned; maintainers change them here.
    The project's maintainers and mentors also see the training claims awaiting a mentor
    (their mentor is gone), which a mentor takes over from here."""
    row = project_or_404(slug)
    manager = may_manage(current_user, row)
    rule = queries.rule_for(row.id)
    rule_form = None
    if manager:
        rule_form = RuleForm(prefix="rule", data={"merges_required": rule.merges_required,
                                                  "mentors_required": rule.mentors_required,
                                                  "trainee_percent": rule.trainee_percent})
    viewer = current_user.id if current_user.is_authenticated else None
    mentoring = viewer is not None and queries.is_mentor(row.id, viewer)
    awaiting = queries.awaiting_mentor(row.id) if manager or mentoring else None
    return render_template("training/project.html", project=row, manager=manager, panel=project_panel(row),
                           awaiting=awaiting, viewer=viewer, viewer_mentors=mentoring,
                           rule_form=rule_form, mentor_form=MentorForm(prefix="mentor") if manager else None,
                           revoke_form=RevokeForm(prefix="revoke") if manager else None)


def _managed(slug: str):
    row = project_or_404(slug)
    back = url_for("training.project", slug=row.slug)
    on_refusal_go_to(back)  # a TrainingError: flashed, back to the training page
    return row, refuse_unless_manager(row, back=back)


@bp.post("/projects/<slug>/training/rule")
def set_rule(slug: str):
    """A maintainer sets the project's training rule."""
    row, refusal = _managed(slug)
    if refusal is not None:
        return refusal
    form = RuleForm(prefix="rule")
    if not form.validate_on_submit():
        flash(_("Merges must be 1 to 50, mentors 1 to 10 and the trainee's share 1 to 100%."), "error")
        return _see_other("training.project", slug=row.slug)
    training.set_rule(row, merges_required=form.merges_required.data, mentors_required=form.mentors_required.data,
                      trainee_percent=form.trainee_percent.data, maintainer=current_actor())
    db.session.commit()
    flash(_("The training rule is saved."))
    return _see_other("training.project", slug=row.slug)


@bp.post("/projects/<slug>/training/mentors")
def name_mentor(slug: str):
    """A maintainer names a mentor by the e-mail address of their account."""
    row, refusal = _managed(slug)
    if refusal is not None:
        return refusal
    form = MentorForm(prefix="mentor")
    person = user_by_email(form.email.data) if form.validate_on_submit() else None
    if person is None:
        flash(_("No account uses that e-mail address."), "error")
        return _see_other("training.project", slug=row.slug)
    training.name_mentor(row, person, maintainer=current_actor())
    db.session.commit()
    flash(_("%(name)s is now a mentor of %(project)s.", name=person.display_name, project=row.name))
    return _see_other("training.project", slug=row.slug)


@bp.post("/projects/<slug>/training/mentors/<id:user_id>/remove")
def remove_mentor(slug: str, user_id: int):
    """A maintainer ends a person's mentoring of the project."""
    row, refusal = _managed(slug)
    if refusal is not None:
        return refusal
    if not MentorApproveForm().validate_on_submit():
        abort(400)
    training.remove_mentor(row, user_id, maintainer=current_actor())
    db.session.commit()
    flash(_("The mentor is removed."))
    return _see_other("training.project", slug=row.slug)


@bp.post("/projects/<slug>/training/certifications/<id:certification_id>/revoke")
def revoke(slug: str, certification_id: int):
    """A maintainer revokes a certification earned through training, with a reason."""
    row, refusal = _managed(slug)
    if refusal is not None:
        return refusal
    earned = db.session.get(EarnedCertification, certification_id)
    if earned is None or earned.project_id != row.id:
        abort(404)
    form = RevokeForm(prefix="revoke")
    if not form.validate_on_submit():
        flash(_("Give the reason for revoking (up to %(most)d characters).", most=2000), "error")
        return _see_other("training.project", slug=row.slug)
    training.revoke_earned(earned, maintainer=current_actor(), reason=form.reason.data)
    db.session.commit()
    flash(_("The certification of %(name)s is revoked.", name=earned.user.display_name))
    return _see_other("training.project", slug=row.slug)


# --- a training claim: the mentor's part --------------------------------------------------

def _claim(claim_id: int) -> Claim:
    claim = db.session.get(Claim, claim_id)
    if claim is None or queries.training_claim_of(claim.id) is None:
        abort(404)
    on_refusal_go_to(url_for("claims.show", claim_id=claim.id))  # refusals: flashed, back to the claim
    return claim


@bp.post("/claims/<id:claim_id>/mentor/approve")
@login_required
def approve_claim(claim_id: int):
    """A mentor of the project approves a training claim and is named on it."""
    claim = _claim(claim_id)
    form = MentorApproveForm(prefix="mentor")
    if not form.validate_on_submit():
        flash(_("The note is too long; nothing was changed."), "error")
        return _see_other("claims.show", claim_id=claim.id)
    training.approve_as_mentor(claim, mentor=current_actor(), note=(form.note.data or "").strip() or None)
    db.session.commit()
    flash(_("You approved the training claim and are its mentor; the trainee is told."))
    return _see_other("claims.show", claim_id=claim.id)


@bp.post("/claims/<id:claim_id>/mentor/take-over")
@login_required
def take_over(claim_id: int):
    """A mentor of the project takes over a training claim whose mentor is gone."""
    claim = _claim(claim_id)
    if not TakeOverForm(prefix="takeover").validate_on_submit():
        abort(400)
    training.take_over(claim, mentor=current_actor())
    db.session.commit()
    flash(_("You now mentor this training claim; the trainee is told."))
    return _see_other("claims.show", claim_id=claim.id)


@bp.post("/claims/<id:claim_id>/mentor/review")
@login_required
def review(claim_id: int):
    """The claim's mentor reviews the trainee's change: approved, or changes requested with a note."""
    claim = _claim(claim_id)
    form = ReviewForm(prefix="review")
    if not form.validate_on_submit():
        flash(_("Choose your review; the note may have at most %(most)d characters.", most=2000), "error")
        return _see_other("claims.show", claim_id=claim.id)
    training.review(claim, mentor=current_actor(), verdict=ReviewVerdict(form.verdict.data),
                    note=form.note.data or "")
    db.session.commit()
    flash(_("Your review is recorded."))
    return _see_other("claims.show", claim_id=claim.id)


# --- the trainee's progress ---------------------------------------------------------------

@bp.get("/account/training")
@login_required
def progress():
    """The signed-in person's way to certification, per project ("2 of 3")."""
    return render_template("training/progress.html", person=db.session.get(User, current_user.id),
                           rows=queries.progress_of(current_user.id))
