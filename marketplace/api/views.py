"""Read-only JSON API under ``/api/v1``, described by ``/api/v1/openapi.json``."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.api import schemas
from marketplace.api.openapi import openapi_document, query_parameters
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.search import (
    MAX_PAGE,
    deleted_item_date,
    find_items,
    parse_filters,
    project_with_details,
    visible_item,
)
from marketplace.errors import BadFilter
from marketplace.extensions import db, limiter
from marketplace.funds import queries as fund_queries
from marketplace.ledger.summary import read as read_ledger_summary
from marketplace.payouts.queries import public_item_payouts
from marketplace.pledges.service import awaiting_payment, awaiting_payment_counts
from marketplace.pledges.transparency import item_pledges
from marketplace.pools import queries as pool_queries
from marketplace.pools.models import MatchingPool, PoolKind
from marketplace.projects.models import MemberProject
from marketplace.projects.queries import open_item_counts
from marketplace.routing import url_pattern
from marketplace.validation import ascii_int, http_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _api_limit() -> str:
    return current_app.config["RATELIMIT_API"]


# Every API request counts against its client address (RATELIMIT_API); past it, 429 with Retry-After.
limiter.limit(_api_limit)(bp)
# The /items parameters whose documented values are choices, numbers or patterned codes.
CHOICE_PARAMETERS = tuple(
    parameter["name"] for parameter in query_parameters(schemas.ItemQuery)
    if "enum" in parameter["schema"] or "pattern" in parameter["schema"] or parameter["schema"].get("type") == "integer"
)
PROJECTS_PAGE_SIZE = 100


def commons_state(item: BacklogItem) -> str:
    """``open`` (still needs work), ``solved`` (a merged change closes it, or
    closed as completed) or ``closed`` (closed without the work). The same
    rule as the backlog's state filter (:func:`marketplace.backlog.search.build_query`)."""
    if item.solved:
        return "solved"
    return "closed" if item.state.value == "closed" else "open"


def item_links() -> tuple[Callable[[int], str], Callable[[int], str]]:
    """``(url, page_url)``: functions of an item id giving its absolute API and
    page links, each built with one ``url_for`` for a whole list
    (:func:`marketplace.routing.url_pattern`)."""
    return (url_pattern("api.item", "item_id", _external=True),
            url_pattern("backlog.item", "item_id", _external=True))


def item_model(item: BacklogItem, awaiting: int | None = None,
               links: tuple[Callable[[int], str], Callable[[int], str]] | None = None) -> schemas.Item:
    """The public shape of a backlog item (schema ``Item``); ``awaiting`` is its
    number of pledges awaiting payment when the caller counted it already (a list),
    ``links`` the list's :func:`item_links`."""
    repo = item.repository
    solved_by = item.solved_by
    url, page_url = links or item_links()
    return schemas.Item(
        id=item.id,
        url=url(item.id),
        page_url=page_url(item.id),
        title=item.title,
        body=item.body,
        state=commons_state(item),
        solved=item.solved,
        forge_state=item.state.value,
        state_reason=item.state_reason,
        close_reason=item.close_reason.value if item.close_reason else None,
        labels=item.label_names,
        author=schemas.Author(login=item.author_login, forge_id=item.author_forge_id),
        forge=schemas.ForgeRef(kind=repo.forge.value, host=item.forge_host, id=item.forge_id, number=item.number,
                               url=http_url(item.html_url)),
        repository=schemas.RepositoryRef(full_name=repo.full_name, url=repo.url),
        project=schemas.ProjectRef(slug=repo.project.slug, name=repo.project.name),
        created_at=item.forge_created_at,
        updated_at=item.forge_updated_at,
        closed_at=item.forge_closed_at,
        comments=item.comments_count,
        priority=item.priority,
        funding_goal=(
            schemas.Money(amount_minor=item.funding_goal_minor, currency=item.funding_goal_currency)
            if item.funding_goal_minor is not None
            else None
        ),
        solved_by=(
            schemas.SolvedBy(repository=solved_by.repository.full_name, number=solved_by.number,
                             url=http_url(solved_by.html_url), merged_at=solved_by.merged_at)
            if solved_by is not None
            else None
        ),
        bounty=[schemas.Money(currency=f.currency, amount_minor=f.held_minor)
                for f in item.funding if f.held_minor > 0],
        # Unpaid pledges are not public money: a count only, never their amounts.
        pledges_awaiting_payment=awaiting_payment(item.id) if awaiting is None else awaiting,
    )


def _project_fields(project: MemberProject, open_items: int) -> dict:
    return {
        "slug": project.slug,
        "name": project.name,
        "url": url_for("api.project", slug=project.slug, _external=True),
        "page_url": url_for("projects.project", slug=project.slug, _external=True),
        "website": http_url(project.website),
        "registry_stage": project.registry_stage,
        "registry_status": project.registry_status.value,
        "sdgs": project.sdg_numbers,
        "open_items": open_items,
    }


def project_model(project: MemberProject, open_items: int) -> schemas.Project:
    """The public shape of a member project in a list (schema ``Project``)."""
    return schemas.Project(**_project_fields(project, open_items))


def project_detail_model(project: MemberProject, open_items: int) -> schemas.ProjectDetail:
    """The public shape of one member project (schema ``ProjectDetail``): the list
    fields plus description, registry data, SDG evidence, repositories and links."""
    return schemas.ProjectDetail(
        **_project_fields(project, open_items),
        description=project.description,
        aliases=project.aliases,
        licences=project.licences,
        types=project.types,
        organisations=project.organisations,
        sdg_evidence=[schemas.SdgEvidence(sdg=s.sdg, text=s.evidence_text, url=s.evidence_url) for s in project.sdgs],
        repositories=[
            schemas.ProjectRepository(forge=r.forge.value, host=r.host, full_name=r.full_name, url=r.url,
                                      forge_id=r.forge_id, former_names=[a.full_name for a in r.aliases])
            for r in project.repositories
        ],
        links=[schemas.ProjectLink(kind=link.kind.value, label=link.label, url=link.url) for link in project.links],
    )


def answer(model: schemas.ApiModel, status: int = 200) -> Response:
    """The JSON response of an API model (its JSON mode: times as UTC strings)."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


def _page_arg() -> int:
    page = ascii_int(request.args.get("page", "1"))
    if page is None or not 1 <= page <= MAX_PAGE:
        raise BadFilter("page", f"page must be a number from 1 to {MAX_PAGE}.")
    return page


def _refuse_blank_choices() -> None:
    """Raise :class:`BadFilter` for an empty value of an ``/items`` parameter the
    document gives as a choice or a number. (The backlog page's form sends empty
    values for "any"; the API takes the document's word: absent, or a value.)"""
    for name in CHOICE_PARAMETERS:
        value = request.args.get(name)
        if value is not None and not value.strip():
            raise BadFilter(name, _("%(param)s must not be empty; leave it out for the default.", param=name))


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document(request.host_url.rstrip("/") + "/api/v1"))


@bp.get("/projects")
def projects():
    """Member projects by name, 100 per page."""
    page = _page_arg()
    total = db.session.scalar(select(func.count(MemberProject.id)))
    rows = db.session.scalars(
        select(MemberProject)
        .options(selectinload(MemberProject.sdgs))
        .order_by(func.lower(MemberProject.name), MemberProject.id)
        .limit(PROJECTS_PAGE_SIZE)
        .offset((page - 1) * PROJECTS_PAGE_SIZE)
    ).all()
    counts = open_item_counts()
    has_next = page * PROJECTS_PAGE_SIZE < total
    return answer(schemas.ProjectList(
        projects=[project_model(p, counts.get(p.id, 0)) for p in rows],
        total=total,
        page=page,
        next=url_for("api.projects", page=page + 1, _external=True) if has_next else None,
    ))


@bp.get("/projects/<slug>")
def project(slug: str):
    """One member project with repositories, links and SDG evidence."""
    row = project_with_details(slug)
    if row is None:
        abort(404)
    return answer(project_detail_model(row, open_item_counts().get(row.id, 0)))


@bp.get("/projects/<slug>/fund")
def project_fund(slug: str):
    """A member project's fund per currency: balance, received, allotted,
    returned and taken back by Stripe (minor units), its live subscribers as they chose to be shown,
    and its allotments with their attribution."""
    row = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
    if row is None:
        abort(404)
    out = []
    for fund in fund_queries.funds_of(row):
        f = fund_queries.figures(fund)
        out.append(schemas.FundCurrency(
            currency=fund.currency, state=fund.state.value, balance=f["balance"], received=f["received"],
            monthly=f["monthly"], allotted=f["allotted"], returned=f["returned"], paid_out=f["paid_out"],
            taken_back=f["taken_back"],
            subscribers=[schemas.FundSubscriber(name=s["name"], amount_minor=s["amount_minor"], state=s["state"].value)
                         for s in fund_queries.subscribers(fund)],
            allotments=[schemas.FundAllotment(
                allotment=a.id, item=a.item_id, amount_minor=a.amount_minor, reason=a.reason, state=a.state.value,
                created_at=a.created_at, expires_at=a.expires_at,
                attribution=[schemas.FundAttribution(name=p["name"], amount_minor=p["amount_minor"])
                             for p in fund_queries.attribution_of(a)])
                for a in fund_queries.allotments_of(fund) if not a.item.hidden]))
    return answer(schemas.ProjectFundView(project=row.slug, url=url_for("funds.show", slug=row.slug, _external=True),
                                          funds=out))


@bp.get("/items")
def items():
    """Backlog items with the same filters as the backlog page; ``next`` carries
    a keyset ``cursor`` (no OFFSET however deep), ``total`` is exact up to
    10,000 (``total_exact``)."""
    _refuse_blank_choices()
    filters = parse_filters(request.args)
    cursor = request.args.get("cursor")
    if cursor is not None and "page" in request.args:
        raise BadFilter("cursor", _("Give a cursor or a page, not both."))
    result = find_items(
        filters,
        page_size=current_app.config["BACKLOG_PAGE_SIZE"],
        reporting_currency=current_app.config["REPORTING_CURRENCY"],
        cursor=cursor,
    )
    next_url = (
        url_for("api.items", **filters.as_args(page=1), cursor=result.next_cursor, _external=True)
        if result.next_cursor
        else None
    )
    awaiting = awaiting_payment_counts([i.id for i in result.items])
    links = item_links()
    return answer(schemas.ItemList(
        items=[item_model(i, awaiting.get(i.id, 0), links) for i in result.items],
        total=result.total,
        total_exact=result.total_exact,
        page=result.page,
        next=next_url,
    ))


@bp.get("/items/<id:item_id>")
def item(item_id: int):
    """One visible backlog item."""
    row = visible_item(item_id)
    if row is None:
        _gone_or_404(item_id)
    return answer(item_model(row))


def _gone_or_404(item_id: int):
    """410 with the date for an item deleted on the forge, 404 otherwise (never shown, or private)."""
    deleted_at = deleted_item_date(item_id)
    if deleted_at is None:
        abort(404)
    message = _("This item was removed on the forge on %(date)s.", date=deleted_at.date().isoformat())
    abort(answer(schemas.Error(error=schemas.ErrorDetail(status=410, message=message, deleted_at=deleted_at)),
                 410))


@bp.get("/items/<id:item_id>/ledger")
def item_ledger(item_id: int):
    """Every received pledge of a visible item (funder name or null for anonymous), its escrow, refunds and
    payouts; pledges awaiting payment as a count only."""
    row = visible_item(item_id)
    if row is None:
        _gone_or_404(item_id)
    return answer(schemas.ItemLedger(
        item=row.id,
        escrow=[schemas.Money(currency=f.currency, amount_minor=f.held_minor) for f in row.funding if f.held_minor],
        pledges=[schemas.LedgerPledge(**pledge) for pledge in item_pledges(row.id)],
        pledges_awaiting_payment=awaiting_payment(row.id),
        payouts=[schemas.LedgerPayout(**payout) for payout in public_item_payouts(row.id)],
    ))


@bp.get("/ledger")
def ledger_summary():
    """Totals per currency and the last reconciliation's result, from the stored
    summary (:mod:`marketplace.ledger.summary`): one row read, whatever the
    ledger's size."""
    summary = read_ledger_summary()
    if summary is None:
        return answer(schemas.LedgerSummary(totals={}, reconciled=False, violations=0, totals_at=None,
                                            checked_at=None))
    return answer(schemas.LedgerSummary(totals=summary.totals, reconciled=summary.reconciled,
                                        violations=summary.violations, totals_at=summary.totals_at,
                                        checked_at=summary.checked_at))


def _pool_fields(pool: MatchingPool) -> dict:
    return {"pool": pool.id, "name": pool.name, "kind": pool.kind.value, "state": pool.state.value,
            "currency": pool.currency, "rail": pool.rail,
            "ratio_percent": pool.ratio_percent if pool.kind is PoolKind.ratio else None,
            "starts_at": pool.starts_at, "ends_at": pool.ends_at,
            "figures": schemas.PoolFigures(**pool_queries.figures(pool)),
            "url": url_for("pools.show", pool_id=pool.id, _external=True)}


@bp.get("/pools")
def pools():
    """Funded and ended matching pools and rounds, newest first, with their figures."""
    return answer(schemas.PoolList(pools=[schemas.Pool(**_pool_fields(p)) for p in pool_queries.listed_pools()]))


@bp.get("/pools/<id:pool_id>")
def pool(pool_id: int):
    """One funded or ended pool (or one cancelled after it was funded) with its caps, eligibility and matches."""
    row = db.session.get(MatchingPool, pool_id)
    if row is None or (row.state not in pool_queries.LISTED_STATES and row.funded_at is None):
        abort(404)
    return answer(schemas.PoolDetail(
        **_pool_fields(row), cap_per_pledge_minor=row.cap_per_pledge_minor,
        cap_per_funder_minor=row.cap_per_funder_minor, cap_per_item_minor=row.cap_per_item_minor,
        min_pledge_minor=row.min_pledge_minor, item_cap_bps=row.item_cap_bps, sdgs=list(row.eligible_sdgs),
        labels=list(row.eligible_labels), projects=list(row.eligible_project_ids),
        matches=[schemas.PoolMatchView(item=m.item_id, pledge=m.pledge_id, amount_minor=m.amount_minor,
                                       returned_minor=m.returned_minor, state=m.state.value)
                 for m in pool_queries.matches_of(row)]))
