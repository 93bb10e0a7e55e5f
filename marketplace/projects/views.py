"""Member project pages, their maintainers (invitations, maintainership requests), the 17 SDG pages,
and what a maintainer of a project (or an admin) does on one of its items: link or unlink a pull request,
decide an unknown close, name where the work went."""
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
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from marketplace.access import current_actor, project_or_404, refuse_unless_manager
from marketplace.accounts.forms import InviteForm, MaintainerRequestForm, as_choices
from marketplace.backlog.ending import decide_unknown_close, name_work_target
from marketplace.backlog.models import BacklogItem, ItemLink, PullRequest
from marketplace.backlog.search import BacklogFilters, find_items, project_with_details
from marketplace.backlog.service import link_by_hand, unlink_by_hand
from marketplace.errors import BadFilter, on_refusal_go_to
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.markdown import render_markdown
from marketplace.projects import service as projects_service
from marketplace.projects.forms import (
    ActionForm,
    CloseDecisionForm,
    LinkPullRequestForm,
    WorkTargetForm,
)
from marketplace.projects.models import RegistryStatus
from marketplace.projects.queries import (
    decision_count,
    maintainers_of,
    maintains_any,
    open_item_counts,
    project_list,
    projects_of_sdg,
    sdg_counts,
    to_decide,
)
from marketplace.reports.queries import countries_of
from marketplace.sdgs import SDG_NAMES
from marketplace.validation import ascii_int

bp = Blueprint("projects", __name__)


@bp.app_context_processor
def maintainer_navigation() -> dict:
    """``to_decide_count`` for the navigation: None for people who maintain no
    project (no link), else how many claims and payouts wait for them."""
    if not getattr(current_user, "is_authenticated", False) or not maintains_any(current_user.id):
        return {"to_decide_count": None}
    return {"to_decide_count": decision_count(current_user.id)}


@bp.get("/to-decide", endpoint="to_decide")
@login_required
def to_decide_page():
    """"To decide": the claims and payouts of the projects the person maintains that wait for them."""
    return render_template("projects/to_decide.html", **to_decide(current_user.id),
                           maintainer=maintains_any(current_user.id))


@bp.get("/projects")
def projects():
    """Member projects with open item counts and money held: ``?q=`` searches
    names, ``?sort=`` name / open / funded, ``?all=1`` shows the projects with
    no open item too (otherwise only counted). Another sort answers 400."""
    q = (request.args.get("q") or "").strip()[:200]
    sort = request.args.get("sort") or "name"
    show_empty = request.args.get("all") == "1"
    currency = current_app.config["REPORTING_CURRENCY"]
    try:
        listing = project_list(q=q, sort=sort, show_empty=show_empty, currency=currency)
    except ValueError:
        raise BadFilter("sort", _("Sort by name, open items or funded.")) from None
    return render_template("projects/list.html", q=q, sort=sort, show_empty=show_empty, currency=currency,
                           **listing)


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
        deployment_countries=countries_of(row.id, "deployment"),
        development_countries=countries_of(row.id, "development"),
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
    request_form = MaintainerRequestForm()
    request_form.repository_id.choices = as_choices(
        (str(r.id), r.full_name) for r in row.repositories if r.forge.value == "github")
    return render_template(
        "projects/maintainers.html", project=row, people=maintainers_of(row.id), invite_form=InviteForm(),
        request_form=request_form, may_manage=projects_service.may_manage(current_user, row),
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
        flash(_("Give a valid e-mail address."), "error")
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


@bp.post("/projects/<slug>/maintainers/request")
def request_maintainership(slug: str):
    """An administrator of one of the project's GitHub repositories asks to maintain it."""
    row = project_or_404(slug)
    back = url_for("projects.maintainers", slug=slug)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=back))
    form = MaintainerRequestForm()
    form.repository_id.choices = as_choices((str(r.id), r.full_name) for r in row.repositories)
    if not form.validate_on_submit():
        flash(_("Choose a repository."), "error")
        return redirect(back), 303
    repo = db.session.get(Repository, int(form.repository_id.data))
    on_refusal_go_to(back)  # a ProjectError: flashed, then back to the maintainers page (303)
    projects_service.request_maintainership(row, repo, current_actor())
    db.session.commit()
    flash(_("Your claim is recorded; an admin will confirm it."))
    return redirect(back)
    return redirect(url_for("projects.maintainers", slug=slug))


# --- a maintainer curates an item of their project (admins may too) ----------------------
# A refused form (a value too long) changes nothing and flashes why: the item's page is
# built by the backlog views, so what was typed cannot be shown again there.

def _refused_form(form, item_id: int):
    """Flash each field error of ``form`` and send the maintainer back to the item (303)."""
    for field in form:
        for error in field.errors:
            flash(f"{field.label.text}: {error}" if field.label.text else error, "error")
    return redirect(url_for("backlog.item", item_id=item_id), code=303)


@bp.post("/items/<id:item_id>/links")
def link_pull_request(item_id: int):
    """A maintainer of the item's project (or an admin) links a pull request of
    the item's repository to the item by hand (it closes the item)."""
    item = db.get_or_404(BacklogItem, item_id)
    if (refused := refuse_unless_manager(item.repository.project, back=request.referrer or "/")) is not None:
        return refused
    if item.deleted_at is not None:
        abort(410)  # deleted on the forge: nothing attaches to it
    form = LinkPullRequestForm()
    if not form.validate_on_submit():
        return _refused_form(form, item.id)
    number = ascii_int(form.number.data or "")
    pull = None
    if number is not None and number > 0:
        pull = db.session.scalar(select(PullRequest).where(
            PullRequest.repository_id == item.repository_id, PullRequest.number == number))
    if pull is None:
        flash(_("There is no pull request with that number in %(repo)s.", repo=item.repository.full_name), "error")
        return redirect(url_for("backlog.item", item_id=item.id)), 303
    link_by_hand(pull, item, actor=f"user:{current_actor().id}")
    db.session.commit()
    flash(_("Pull request #%(number)s is linked.", number=pull.number))
    return redirect(url_for("backlog.item", item_id=item.id))


@bp.post("/items/<id:item_id>/close-decision")
def decide_close(item_id: int):
    """A maintainer of the item's project (or an admin) decides what a close
    the forge gave no known reason for meant: completed or not planned."""
    item = db.get_or_404(BacklogItem, item_id)
    if (refused := refuse_unless_manager(item.repository.project, back=request.referrer or "/")) is not None:
        return refused
    form = CloseDecisionForm()
    if not form.validate_on_submit():
        return _refused_form(form, item.id)
    me = current_actor()
    on_refusal_go_to(url_for("backlog.item", item_id=item.id))  # an EndingError: flashed, 303
    decide_unknown_close(item, form.decision.data or "", actor=f"user:{me.id}", actor_user_id=me.id)
    db.session.commit()
    flash(_("Your decision on the close is recorded."))
    return redirect(url_for("backlog.item", item_id=item.id))


@bp.post("/items/<id:item_id>/work-target")
def set_work_target(item_id: int):
    """A maintainer of the item's project (or an admin) names the backlog item
    where the work of a duplicate or moved item went (by its id)."""
    item = db.get_or_404(BacklogItem, item_id)
    if (refused := refuse_unless_manager(item.repository.project, back=request.referrer or "/")) is not None:
        return refused
    form = WorkTargetForm()
    if not form.validate_on_submit():
        return _refused_form(form, item.id)
    target_id = ascii_int(form.target.data or "")
    target = db.session.get(BacklogItem, target_id) if target_id else None
    me = current_actor()
    on_refusal_go_to(url_for("backlog.item", item_id=item.id))  # an EndingError: flashed, 303
    name_work_target(item, target, actor=f"user:{me.id}", actor_user_id=me.id)
    db.session.commit()
    flash(_("Its funders are offered to move their pledges there."))
    return redirect(url_for("backlog.item", item_id=item.id))


@bp.post("/links/<id:link_id>/remove")
def unlink(link_id: int):
    """A maintainer of the linked item's project (or an admin) removes a link
    by hand; sync will not bring it back."""
    row = db.get_or_404(ItemLink, link_id)
    # The item's project decides what closes its items (cross-project links too).
    project = row.item.repository.project if row.item is not None else row.pull_request.repository.project
    if (refused := refuse_unless_manager(project, back=request.referrer or "/")) is not None:
        return refused
    if not ActionForm().validate_on_submit():
        abort(400)
    item_id = row.item_id
    unlink_by_hand(row, actor=f"user:{current_actor().id}")
    db.session.commit()
    flash(_("The link was removed."))
    return redirect(url_for("backlog.item", item_id=item_id) if item_id else url_for("backlog.index"))

