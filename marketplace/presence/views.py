"""Bounty badges (public SVG) and the maintainers' page that turns the forge
comment and label on or off per repository."""
from __future__ import annotations

import hashlib

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from marketplace.access import current_actor, project_or_404, refuse_unless_manager
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.search import visible_item
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.httpcache.service import current_version
from marketplace.notifications.links import url_for_public
from marketplace.presence import badges
from marketplace.presence.forms import PresenceForm
from marketplace.presence.item_section import snippets
from marketplace.presence.models import ForgeWrite
from marketplace.presence.queries import bounty_state, project_open_bounties, project_repositories
from marketplace.presence.service import PresenceError, abandoned_items, forget_abandon, set_presence

bp = Blueprint("presence", __name__)
MAX_LABEL = 40


def _label(default: str) -> str:
    """The badge's left text: ``?label=`` (at most 40 characters) or ``default``."""
    given = (request.args.get("label") or "").strip()
    return given[:MAX_LABEL] if given else default


def _etag(*parts) -> str:
    version, _changed = current_version()
    return hashlib.sha256("|".join(map(str, (*parts, version))).encode()).hexdigest()[:32]


def _svg(svg: str | None, etag: str):
    """The badge answer: ``304`` when ``If-None-Match`` has ``etag``; short public caching either way."""
    if svg is None:
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(svg, mimetype="image/svg+xml")
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={current_app.config.get('BADGE_MAX_AGE', 120)}"
    return response


@bp.get("/items/<id:item_id>/badge.svg")
def item_badge(item_id: int):
    """The item's badge: its bounty and state (open, claimed, solved, paid, closed
    without the work). The ETag moves with the public data version (issue 15)."""
    label = _label("bounty")
    etag = _etag("item", item_id, label)
    if etag in request.if_none_match:
        return _svg(None, etag)
    item = visible_item(item_id)
    if item is None or item.private_reason is not None:
        abort(404)
    return _svg(badges.item_badge(bounty_state(item), label), etag)


@bp.get("/projects/<slug>/badge.svg")
def project_badge(slug: str):
    """The project's badge: the money held on its open items."""
    label = _label("open bounties")
    etag = _etag("project", slug, label)
    if etag in request.if_none_match:
        return _svg(None, etag)
    project = project_or_404(slug)
    return _svg(badges.project_badge(project_open_bounties(project.id), label), etag)


@bp.app_template_global("project_badge_snippets")
def project_badge_snippets(project) -> dict:
    """The project badge's snippets to copy (see :func:`~marketplace.presence.item_section.snippets`)."""
    return snippets(url_for_public("presence.project_badge", slug=project.slug),
                    url_for_public("projects.project", slug=project.slug), "Open bounties on Backlog Commons")


@bp.get("/projects/<slug>/forge")
def settings(slug: str):
    """Maintainers: the comment and label on the forge, per repository, and what was written lately."""
    project = project_or_404(slug)
    if (refusal := refuse_unless_manager(project, back=request.path)) is not None:
        return refusal
    return _settings_page(project)


def _settings_page(project, form_errors: dict | None = None, status: int = 200):
    writes = db.session.scalars(
        select(ForgeWrite).join(BacklogItem, BacklogItem.id == ForgeWrite.item_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(Repository.project_id == project.id).order_by(ForgeWrite.id.desc()).limit(20)).all()
    return render_template(
        "presence/settings.html", project=project, rows=project_repositories(project.id),
        form=PresenceForm(), errors=form_errors or {}, writes=writes, abandoned=abandoned_items(project.id),
        ForgeKind=ForgeKind), status


@bp.post("/projects/<slug>/forge/<id:repository_id>")
def change(slug: str, repository_id: int):
    """Turn the comment and label on or off for one repository of the project."""
    project = project_or_404(slug)
    back = url_for("presence.settings", slug=project.slug)
    if (refusal := refuse_unless_manager(project, back=back)) is not None:
        return refusal
    repo = db.session.get(Repository, repository_id)
    if repo is None or repo.project_id != project.id:
        abort(404)
    form = PresenceForm()
    if not form.validate_on_submit():
        return _settings_page(project, {repo.id: _("Please correct the marked fields.")}, 400)
    on = bool(form.turn_on.data)
    try:
        set_presence(repo, on, actor=current_actor(), gitlab_token=form.token.data)
    except PresenceError as exc:
        db.session.rollback()
        return _settings_page(project, {repo.id: str(exc)}, 400)
    db.session.commit()
    flash(_("The bounty comment and label are on for %(repo)s.", repo=repo.full_name) if on
          else _("The bounty comment and label are off for %(repo)s: nothing more is written there.",
                 repo=repo.full_name))
    return redirect(back, code=303)


@bp.post("/projects/<slug>/forge/items/<id:item_id>/restore")
def restore(slug: str, item_id: int):
    """Post the comment again on an item where people deleted it twice."""
    project = project_or_404(slug)
    back = url_for("presence.settings", slug=project.slug)
    if (refusal := refuse_unless_manager(project, back=back)) is not None:
        return refusal
    if not PresenceForm().validate_on_submit():
        abort(400)
    item = db.session.get(BacklogItem, item_id)
    if item is None or item.repository.project_id != project.id:
        abort(404)
    forget_abandon(item, actor=current_actor())
    db.session.commit()
    ref = item.repository.full_name + "#" + str(item.number)
    flash(_("The comment will be posted again on %(ref)s.", ref=ref))
    return redirect(back, code=303)
