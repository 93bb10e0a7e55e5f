"""Member project pages, their maintainers (invitations, maintainership requests) and the 17 SDG pages."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from marketplace.access import current_actor, project_or_404, refuse_unless_manager
from marketplace.accounts.forms import ClaimForm, InviteForm, as_choices
from marketplace.backlog.search import BacklogFilters, find_items, project_with_details
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.markdown import render_markdown
from marketplace.projects import service as projects_service
from marketplace.projects.models import RegistryStatus
from marketplace.projects.queries import (
    all_projects,
    maintainers_of,
    open_item_counts,
    projects_of_sdg,
    sdg_counts,
)
from marketplace.sdgs import SDG_NAMES

bp = Blueprint("projects", __name__)


@bp.get("/projects")
def projects():
    """Every member project, active first, with open item counts."""
    return render_template("projects/list.html", projects=all_projects(), counts=open_item_counts())


@bp.get("/projects/<slug>")
def project(slug: str):
    """One member project: description, SDGs, repositories, links and its open items."""
    row = project_with_details(slug)
    if row is None:
        abort(404)
    filters = BacklogFilters(project=slug)
    items = find_items(
        filters,
        page_size=current_app.config["BACKLOG_PAGE_SIZE"],
        reporting_currency=current_app.config["REPORTING_CURRENCY"],
    )
    return render_template(
        "projects/detail.html",
        project=row,
        items=items,
        filters=filters,
        description_html=render_markdown(row.description),
        sdg_names=SDG_NAMES,
        archived=row.registry_status is not RegistryStatus.active,
    )


@bp.get("/sdgs")
def sdgs():
    """The 17 SDGs with the number of projects and open items under each."""
    return render_template("sdgs/list.html", sdg_names=SDG_NAMES, counts=sdg_counts())


@bp.get("/sdgs/<int:number>")
def sdg(number: int):
    """One SDG: the member projects serving it and their open items."""
    if number not in SDG_NAMES:
        abort(404)
    rows = projects_of_sdg(number)
    filters = BacklogFilters(sdg=number)
    items = find_items(
        filters,
        page_size=current_app.config["BACKLOG_PAGE_SIZE"],
        reporting_currency=current_app.config["REPORTING_CURRENCY"],
    )
    return render_template(
        "sdgs/detail.html",
        number=number,
        name=SDG_NAMES[number],
        projects=rows,
        items=items,
        filters=filters,
        counts=open_item_counts(),
    )


@bp.get("/projects/<slug>/maintainers")
def maintainers(slug: str):
    """Who maintains the project; maintainers invite, administrators of its repositories claim."""
    row = project_or_404(slug)
    claim_form = ClaimForm()
    claim_form.repository_id.choices = as_choices(
        (str(r.id), r.full_name) for r in row.repositories if r.forge.value == "github")
    return render_template(
        "projects/maintainers.html", project=row, people=maintainers_of(row.id), invite_form=InviteForm(),
        claim_form=claim_form, may_manage=projects_service.may_manage(current_user, row),
    )


@bp.post("/projects/<slug>/maintainers/invite")
def invite_maintainer(slug: str):
    """A maintainer of this project (or an admin) invites a co-maintainer by e-mail."""
    row = project_or_404(slug)
    back = url_for("projects.maintainers", slug=slug)
    if (refusal := refuse_unless_manager(row, back=back)) is not None:
        return refusal
    form = InviteForm()
    if not form.validate_on_submit():
        flash(_("Give a valid e-mail address."))
        return redirect(back), 303
    projects_service.invite(row, form.email.data, inviter=current_actor())
    db.session.commit()
    flash(_("An invitation was sent to %(email)s.", email=form.email.data))
    return redirect(back)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    """Accept an invitation to co-maintain a project."""
    row = projects_service.find_invitation(token)
    if row is None:
        abort(404)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=request.path))
    form = FlaskForm()
    error = None
    if form.validate_on_submit():
        try:
            projects_service.accept(row, current_actor())
        except projects_service.ProjectError as exc:
            error = str(exc)
        else:
            db.session.commit()
            flash(_("You now maintain %(project)s.", project=row.project.name))
            return redirect(url_for("projects.maintainers", slug=row.project.slug))
    status = 400 if request.method == "POST" else 200
    return render_template("projects/invitation.html", invitation=row, form=form, error=error), status


@bp.post("/projects/<slug>/claim")
def claim_maintainership(slug: str):
    """An administrator of one of the project's GitHub repositories asks to maintain it."""
    row = project_or_404(slug)
    back = url_for("projects.maintainers", slug=slug)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=back))
    form = ClaimForm()
    form.repository_id.choices = as_choices((str(r.id), r.full_name) for r in row.repositories)
    if not form.validate_on_submit():
        flash(_("Choose a repository."))
        return redirect(back), 303
    repo = db.session.get(Repository, int(form.repository_id.data))
    on_refusal_go_to(back)  # a ProjectError: flashed, then back to the maintainers page (303)
    projects_service.claim(row, repo, current_actor())
    db.session.commit()
    flash(_("Your claim is recorded; an admin will confirm it."))
    return redirect(back)
