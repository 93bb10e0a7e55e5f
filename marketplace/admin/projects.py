"""Member projects: admission, naming maintainers, and people's requests to maintain a project."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from marketplace.access import admin_required, current_actor, project_or_404
from marketplace.accounts.service import user_by_email
from marketplace.admin.blueprint import bp, like, listing, paginate, search_text
from marketplace.admin.forms import ActionForm, MaintainerForm
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.projects.models import MaintainerRequest, MemberProject
from marketplace.projects.service import (
    add_maintainer,
    admit,
    decide,
    maintainer_counts,
)


def _projects_page(q: str, *, bound: tuple[int, MaintainerForm] | None = None, status: int = 200):
    """The projects list searched by ``q``; ``bound`` is (project id, the refused form) to show again."""
    stmt = select(MemberProject)
    if q:
        pattern = like(q.lower())
        stmt = stmt.where(func.lower(MemberProject.name).like(pattern, escape="\\")
                          | MemberProject.slug.like(pattern, escape="\\"))
    page = paginate(stmt, [func.lower(MemberProject.name), MemberProject.id])
    return render_template("admin/projects.html", **listing(page), q=q, counts=maintainer_counts(),
                           bound=dict([bound]) if bound else {}), status


@bp.get("/projects")
@admin_required
def projects():
    """Member projects: admission and maintainers; searchable by name or slug."""
    return _projects_page(search_text())


@bp.post("/projects/<slug>/admit")
@admin_required
def admit_project(slug: str):
    """Admit a registry project to the commons (idempotent)."""
    project = project_or_404(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    admit(project, actor=current_actor())
    db.session.commit()
    flash(_("%(project)s is admitted to the commons.", project=project.name))
    return redirect(url_for("admin.projects", q=request.args.get("q") or None))


@bp.post("/projects/<slug>/maintainers")
@admin_required
def name_maintainer(slug: str):
    """Name a maintainer of a project by the e-mail address of their account."""
    project = project_or_404(slug)
    form = MaintainerForm()
    if not form.validate_on_submit():
        return _projects_page(slug, bound=(project.id, form), status=400)
    person = user_by_email(form.email.data or "")
    if person is None:
        flash(_("No account uses that e-mail address."), "error")
        return redirect(url_for("admin.projects", q=slug)), 303
    me = current_actor()
    # An admin naming themselves is allowed: admins already decide for every
    # project, so it grants nothing new (issue 23 refuses self-decisions that do).
    add_maintainer(project, person, granted_by=f"user:{me.id}", actor_user_id=me.id)
    db.session.commit()
    flash(_("%(name)s maintains %(project)s.", name=person.display_name, project=project.name))
    return redirect(url_for("admin.projects", q=slug))


@bp.get("/maintainer-requests")
@admin_required
def maintainer_requests():
    """Requests to maintain a project waiting for a decision, then the decided ones."""
    page = paginate(select(MaintainerRequest),
                    [(MaintainerRequest.status != "requested"), MaintainerRequest.id.desc()])
    return render_template("admin/maintainer_requests.html", **listing(page))


@bp.post("/maintainer-requests/<id:request_id>/<any(confirm, reject):decision>")
@admin_required
def decide_maintainer_request(request_id: int, decision: str):
    """Confirm (the person becomes a maintainer) or reject a request to maintain a project."""
    row = db.get_or_404(MaintainerRequest, request_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("admin.maintainer_requests"))
    decide(row, confirm=decision == "confirm", admin=current_actor())  # ProjectError: flashed, 303
    db.session.commit()
    flash(_("The request is %(status)s.", status=row.status))
    return redirect(url_for("admin.maintainer_requests"))
