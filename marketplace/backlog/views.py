"""Public backlog pages: the list with search and filters, and one item."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.queries import work_went_to
from marketplace.backlog.models import BacklogItem, ItemLink, PullRequest
from marketplace.backlog.search import deleted_item_date, find_items, lenient_filters, parse_filters, visible_item
from marketplace.errors import BadFilter
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.markdown import render_markdown
from marketplace.projects.models import MemberProject
from marketplace.sdgs import SDG_NAMES

bp = Blueprint("backlog", __name__)


def _filter_choices() -> dict:
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
    projects = db.session.execute(
        select(MemberProject.slug, MemberProject.name)
        .where(has_items)
        .order_by(func.lower(MemberProject.name), MemberProject.id)
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
                filters=lenient_filters(request.args),
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
    row = visible_item(item_id)
    if row is None:
        deleted_at = deleted_item_date(item_id)
        if deleted_at is not None:
            return render_template("backlog/gone.html", deleted_at=deleted_at), 410
        abort(404)
    return render_item(row)


def render_item(row: BacklogItem, *, claim_form=None, claim_error: str | None = None, status: int = 200,
                pledge_form=None, pledge_error: str | None = None):
    """The item page; the claims and pledge views pass back their form with its errors (status 400)."""
    from flask_login import current_user

    from marketplace.claims.views import claim_section
    from marketplace.money import fee_of
    from marketplace.payouts.views import item_payouts
    from marketplace.payouts.views import paid_out
    from marketplace.pledges.service import awaiting_payment, pledging_closed
    from marketplace.pledges.transparency import item_pledges
    from marketplace.pledges.forms import pledge_form as new_pledge_form
    from marketplace.projects.service import may_manage

    rate = row.repository.project.fee_rate(current_app.config["DEFAULT_FEE_RATE_BPS"])
    example_currency = current_app.config["ALLOWED_CURRENCIES"][0]
    example = 5000  # minor units: 50.00 in most currencies
    manager = may_manage(current_user, row.repository.project)
    return render_template("backlog/item.html", item=row, body_html=render_markdown(row.body),
                           fee={"rate_percent": rate / 100, "currency": example_currency, "example": example,
                                "example_fee": fee_of(example, rate)},
                           links=item_links(row), may_manage=manager,
                           pledge_form=(pledge_form or new_pledge_form()) if current_user.is_authenticated else None,
                           pledge_error=pledge_error,
                           pledging_closed=pledging_closed(row), paid_out=paid_out(row.id),
                           awaiting_payment=awaiting_payment(row.id),
                           funders=[p for p in item_pledges(row.id)
                                    if p["state"] in ("held", "partially_refunded", "released", "disputed")][:50],
                           claims=claim_section(row, form=claim_form, error=claim_error),
                           work_target=work_went_to(row) if row.closed_as_not_planned else None,
                           payouts=item_payouts(row.id)), status


def item_links(item: BacklogItem) -> list[ItemLink]:
    """Links from pull/merge requests to ``item`` that count (not removed, request not deleted)."""
    return list(db.session.scalars(
        select(ItemLink)
        .join(PullRequest, PullRequest.id == ItemLink.pull_request_id)
        .where(ItemLink.item_id == item.id, ItemLink.removed.is_(False), PullRequest.deleted_at.is_(None))
        .options(selectinload(ItemLink.pull_request).selectinload(PullRequest.repository))
        .order_by(PullRequest.forge_created_at, ItemLink.id)
    ))
