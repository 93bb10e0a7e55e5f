"""Member project pages and the 17 SDG pages."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.backlog.search import BacklogFilters, find_items
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
        .where(BacklogItem.state == ItemState.open, BacklogItem.hidden.is_(False))
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
    row = db.session.scalar(
        select(MemberProject)
        .where(MemberProject.slug == slug)
        .options(
            selectinload(MemberProject.sdgs),
            selectinload(MemberProject.repositories).selectinload(Repository.aliases),
            selectinload(MemberProject.links),
        )
    )
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
            .where(BacklogItem.state == ItemState.open, BacklogItem.hidden.is_(False))
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
