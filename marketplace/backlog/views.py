"""Public backlog pages: the list with search and filters, and one item."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from markupsafe import Markup
from sqlalchemy import func, select

from marketplace.backlog.item_page import render_item_page
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.search import (
    deleted_item_date,
    find_items,
    lenient_filters,
    parse_filters,
    visible_item,
)
from marketplace.errors import BadFilter
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.httpcache.service import current_version
from marketplace.projects.models import MemberProject
from marketplace.reports.queries import used_deployment_countries
from marketplace.sdgs import SDG_NAMES

bp = Blueprint("backlog", __name__)


# The project choices, by data version: (version, rows, <option> markup,
# deployment countries). Every
# list page shows up to a thousand of them; they change only with the data.
_choices: dict[str, tuple[int, list, Markup, list]] = {}


def _project_rows() -> list:
    # Only projects with visible items: a filter that can only return nothing
    # is noise, and every option costs bytes on a slow connection.
    # EXISTS probes the repository index once per project instead of
    # scanning every item for a DISTINCT.
    has_items = (
        select(BacklogItem.id)
        .join(Repository, BacklogItem.repository_id == Repository.id)
        .where(Repository.project_id == MemberProject.id, BacklogItem.hidden.is_(False))
        .exists()
    )
    return db.session.execute(
        select(MemberProject.slug, MemberProject.name)
        .where(has_items)
        .order_by(func.lower(MemberProject.name), MemberProject.id)
    ).all()


def _filter_choices(selected: str | None = None) -> dict:
    """The project and SDG choices of the filter form, the project option
    ``selected`` marked; the projects are remembered per data version
    (``HTTP_CACHE_FRAGMENTS``, on unless turned off)."""
    remembered = _choices.get("projects")
    version = current_version()[0] if current_app.config.get("HTTP_CACHE_FRAGMENTS", True) else None
    if version is None or remembered is None or remembered[0] != version:
        rows = _project_rows()
        options = Markup("").join(Markup('<option value="{}">{}</option>').format(slug, name) for slug, name in rows)
        remembered = (version, rows, options, used_deployment_countries())
        if version is not None:
            _choices["projects"] = remembered
    options = remembered[2]
    if selected:
        mark = str(Markup('<option value="{}">').format(selected))
        options = Markup(str(options).replace(mark, mark[:-1] + " selected>", 1))
    return {"projects": remembered[1], "project_options": options, "sdg_names": SDG_NAMES,
            "countries": remembered[3]}


@bp.get("/")
def index():
    """The public backlog: search, filters, sort and pages."""
    try:
        filters = parse_filters(request.args)
    except BadFilter as exc:
        return (
            render_template(
                "backlog/list.html",
                filters=lenient_filters(request.args),
                result=None,
                error=exc,
                **_filter_choices(lenient_filters(request.args).project),
            ),
            400,
        )
    result = find_items(
        filters,
        page_size=current_app.config["BACKLOG_PAGE_SIZE"],
        reporting_currency=current_app.config["REPORTING_CURRENCY"],
        with_body=False,
    )
    return render_template(
        "backlog/list.html", filters=filters, result=result, error=None, **_filter_choices(filters.project)
    )


@bp.get("/items/<id:item_id>")
def item(item_id: int):
    """One backlog item: its forge fields, rendered body and funding."""
    row = visible_item(item_id)
    if row is None:
        deleted_at = deleted_item_date(item_id)
        if deleted_at is not None:
            return render_template("backlog/gone.html", deleted_at=deleted_at), 410
        abort(404)
    return render_item_page(row)
