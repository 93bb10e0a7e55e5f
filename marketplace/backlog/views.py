"""Public backlog pages: the list with search and filters, and one item."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem
from marketplace.backlog.search import find_items, parse_filters
from marketplace.errors import BadFilter
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.markdown import render_markdown
from marketplace.projects.models import MemberProject
from marketplace.sdgs import SDG_NAMES

bp = Blueprint("backlog", __name__)


def _filter_choices() -> dict:
    projects = db.session.execute(
        select(MemberProject.slug, MemberProject.name)
        .where(MemberProject.repositories.any())
        .order_by(MemberProject.name)
    ).all()
    return {"projects": projects, "sdg_names": SDG_NAMES}


@bp.get("/")
def index():
    """The public backlog: search, filters, sort and pages."""
    try:
        filters = parse_filters(request.args)
    except BadFilter as exc:
        return (
            render_template(
                "backlog/list.html",
                filters=None,
                result=None,
                error=exc,
                **_filter_choices(),
            ),
            400,
        )
    result = find_items(
        filters,
        page_size=current_app.config["BACKLOG_PAGE_SIZE"],
        reporting_currency=current_app.config["REPORTING_CURRENCY"],
    )
    return render_template(
        "backlog/list.html", filters=filters, result=result, error=None, **_filter_choices()
    )


@bp.get("/items/<id:item_id>")
def item(item_id: int):
    """One backlog item: its forge fields, rendered body and funding."""
    row = db.session.scalar(
        select(BacklogItem)
        .where(BacklogItem.id == item_id, BacklogItem.hidden.is_(False))
        .options(
            selectinload(BacklogItem.repository).selectinload(Repository.project),
            selectinload(BacklogItem.labels),
            selectinload(BacklogItem.funding),
        )
    )
    if row is None:
        abort(404)
    return render_template("backlog/item.html", item=row, body_html=render_markdown(row.body))
