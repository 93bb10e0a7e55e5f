"""Member project pages and the 17 SDG pages."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.queries import state_condition
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.search import BacklogFilters, find_items, project_with_details
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.markdown import render_markdown
from marketplace.projects.models import MemberProject, ProjectSdg, RegistryStatus
from marketplace.sdgs import SDG_NAMES

bp = Blueprint("projects", __name__)


def open_item_counts() -> dict[int, int]:
    """Open, visible items per member project id."""
    rows = db.session.execute(
        select(Repository.project_id, func.count(BacklogItem.id))
        .join(BacklogItem, BacklogItem.repository_id == Repository.id)
        .where(state_condition("open"), BacklogItem.hidden.is_(False))
        .group_by(Repository.project_id)
    ).all()
    return dict(rows)


@bp.get("/projects")
def projects():
    """Every member project, active first, with open item counts."""
    rows = db.session.scalars(
        select(MemberProject)
        .options(selectinload(MemberProject.sdgs), selectinload(MemberProject.repositories))
        .order_by(MemberProject.registry_status, func.lower(MemberProject.name))
    ).all()
    return render_template("projects/list.html", projects=rows, counts=open_item_counts())


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


def sdg_counts() -> dict[int, tuple[int, int]]:
    """Per SDG number: (member projects, open visible items)."""
    projects = dict(
        db.session.execute(select(ProjectSdg.sdg, func.count()).group_by(ProjectSdg.sdg)).all()
    )
    items = dict(
        db.session.execute(
            select(ProjectSdg.sdg, func.count(BacklogItem.id))
            .join(Repository, Repository.project_id == ProjectSdg.project_id)
            .join(BacklogItem, BacklogItem.repository_id == Repository.id)
            .where(state_condition("open"), BacklogItem.hidden.is_(False))
            .group_by(ProjectSdg.sdg)
        ).all()
    )
    return {n: (projects.get(n, 0), items.get(n, 0)) for n in SDG_NAMES}


@bp.get("/sdgs")
def sdgs():
    """The 17 SDGs with the number of projects and open items under each."""
    return render_template("sdgs/list.html", sdg_names=SDG_NAMES, counts=sdg_counts())


@bp.get("/sdgs/<int:number>")
def sdg(number: int):
    """One SDG: the member projects serving it and their open items."""
    if number not in SDG_NAMES:
        abort(404)
    rows = db.session.scalars(
        select(MemberProject)
        .join(ProjectSdg)
        .where(ProjectSdg.sdg == number)
        .order_by(func.lower(MemberProject.name))
    ).all()
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
    from flask_login import current_user

    from marketplace.accounts.forms import ClaimForm, InviteForm, as_choices
    from marketplace.projects import service as projects_service
    from marketplace.projects.models import ProjectMaintainer

    row = _project_or_404(slug)
    people = db.session.scalars(
        select(ProjectMaintainer).where(ProjectMaintainer.project_id == row.id).order_by(ProjectMaintainer.id)
    ).all()
    claim_form = ClaimForm()
    claim_form.repository_id.choices = as_choices(
        (str(r.id), r.full_name) for r in row.repositories if r.forge.value == "github")
    return render_template(
        "projects/maintainers.html", project=row, people=people, invite_form=InviteForm(), claim_form=claim_form,
        may_manage=projects_service.may_manage(current_user, row),
    )


def _project_or_404(slug: str) -> MemberProject:
    row = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
    if row is None:
        abort(404)
    return row


@bp.post("/projects/<slug>/maintainers/invite")
def invite_maintainer(slug: str):
    """A maintainer of this project (or an admin) invites a co-maintainer by e-mail."""
    from flask import flash, redirect, url_for
    from flask_babel import gettext as _
    from flask_login import current_user

    from marketplace.accounts.forms import InviteForm
    from marketplace.projects import service as projects_service

    row = _project_or_404(slug)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=url_for("projects.maintainers", slug=slug)))
    if not projects_service.may_manage(current_user, row):
        abort(403)
    form = InviteForm()
    if not form.validate_on_submit():
        flash(_("Give a valid e-mail address."))
        return redirect(url_for("projects.maintainers", slug=slug)), 303
    projects_service.invite(row, form.email.data, inviter=current_user._get_current_object())
    db.session.commit()
    flash(_("An invitation was sent to %(email)s.", email=form.email.data))
    return redirect(url_for("projects.maintainers", slug=slug))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    """Accept an invitation to co-maintain a project."""
    from flask import flash, redirect, request, url_for
    from flask_babel import gettext as _
    from flask_login import current_user
    from flask_wtf import FlaskForm

    from marketplace.projects import service as projects_service

    row = projects_service.find_invitation(token)
    if row is None:
        abort(404)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=request.path))
    form = FlaskForm()
    error = None
    if form.validate_on_submit():
        try:
            projects_service.accept(row, current_user._get_current_object())
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
    from flask import flash, redirect, url_for
    from flask_babel import gettext as _
    from flask_login import current_user

    from marketplace.accounts.forms import ClaimForm, as_choices
    from marketplace.forges.models import Repository
    from marketplace.projects import service as projects_service

    row = _project_or_404(slug)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=url_for("projects.maintainers", slug=slug)))
    form = ClaimForm()
    form.repository_id.choices = as_choices((str(r.id), r.full_name) for r in row.repositories)
    if not form.validate_on_submit():
        flash(_("Choose a repository."))
        return redirect(url_for("projects.maintainers", slug=slug)), 303
    repo = db.session.get(Repository, int(form.repository_id.data))
    try:
        projects_service.claim(row, repo, current_user._get_current_object())
    except projects_service.ProjectError as exc:
        flash(str(exc), "error")
        return redirect(url_for("projects.maintainers", slug=slug)), 303
    db.session.commit()
    flash(_("Your claim is recorded; an admin will confirm it."))
    return redirect(url_for("projects.maintainers", slug=slug))
