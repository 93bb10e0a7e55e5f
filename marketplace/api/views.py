"""Read-only JSON API under ``/api/v1``, described by ``/api/v1/openapi.json``."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.api.openapi import openapi_document
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
from marketplace.extensions import db
from marketplace.payouts.queries import public_item_payouts
from marketplace.pledges.service import awaiting_payment
from marketplace.projects.models import MemberProject
from marketplace.projects.queries import open_item_counts
from marketplace.validation import ascii_int, http_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PROJECTS_PAGE_SIZE = 100


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def commons_state(item: BacklogItem) -> str:
    """``open`` (still needs work), ``solved`` (a merged change closes it, or
    closed as completed) or ``closed`` (closed without the work). The same
    rule as the backlog's state filter (:func:`marketplace.backlog.search.build_query`)."""
    if item.solved:
        return "solved"
    return "closed" if item.state.value == "closed" else "open"


def item_json(item: BacklogItem) -> dict:
    """The public JSON of a backlog item (schema ``Item`` in the OpenAPI document)."""
    repo = item.repository
    return {
        "id": item.id,
        "url": url_for("api.item", item_id=item.id, _external=True),
        "page_url": url_for("backlog.item", item_id=item.id, _external=True),
        "title": item.title,
        "body": item.body,
        "state": commons_state(item),
        "solved": item.solved,
        "forge_state": item.state.value,
        "state_reason": item.state_reason,
        "close_reason": item.close_reason.value if item.close_reason else None,
        "labels": item.label_names,
        "author": {"login": item.author_login, "forge_id": item.author_forge_id},
        "forge": {
            "kind": repo.forge.value,
            "host": item.forge_host,
            "id": item.forge_id,
            "number": item.number,
            "url": http_url(item.html_url),
        },
        "repository": {"full_name": repo.full_name, "url": repo.url},
        "project": {"slug": repo.project.slug, "name": repo.project.name},
        "created_at": _iso(item.forge_created_at),
        "updated_at": _iso(item.forge_updated_at),
        "closed_at": _iso(item.forge_closed_at),
        "comments": item.comments_count,
        "priority": item.priority,
        "funding_goal": (
            {"amount_minor": item.funding_goal_minor, "currency": item.funding_goal_currency}
            if item.funding_goal_minor is not None
            else None
        ),
        "solved_by": (
            {
                "repository": item.solved_by.repository.full_name,
                "number": item.solved_by.number,
                "url": http_url(item.solved_by.html_url),
                "merged_at": _iso(item.solved_by.merged_at),
            }
            if item.solved_by is not None
            else None
        ),
        "bounty": [
            {"currency": f.currency, "amount_minor": f.held_minor}
            for f in item.funding
            if f.held_minor > 0
        ],
        # Unpaid pledges are not public money: a count only, never their amounts.
        "pledges_awaiting_payment": awaiting_payment(item.id),
    }


def project_json(project: MemberProject, open_items: int, detail: bool = False) -> dict:
    """The public JSON of a member project (schemas ``Project`` / ``ProjectDetail``)."""
    data = {
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
    if detail:
        data.update(
            {
                "description": project.description,
                "aliases": project.aliases,
                "licences": project.licences,
                "types": project.types,
                "organisations": project.organisations,
                "sdg_evidence": [
                    {"sdg": s.sdg, "text": s.evidence_text, "url": s.evidence_url}
                    for s in project.sdgs
                ],
                "repositories": [
                    {
                        "forge": r.forge.value,
                        "host": r.host,
                        "full_name": r.full_name,
                        "url": r.url,
                        "forge_id": r.forge_id,
                        "former_names": [a.full_name for a in r.aliases],
                    }
                    for r in project.repositories
                ],
                "links": [
                    {"kind": link.kind.value, "label": link.label, "url": link.url}
                    for link in project.links
                ],
            }
        )
    return data


def _page_arg() -> int:
    page = ascii_int(request.args.get("page", "1"))
    if page is None or not 1 <= page <= MAX_PAGE:
        raise BadFilter("page", f"page must be a number from 1 to {MAX_PAGE}.")
    return page


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
    return jsonify(
        projects=[project_json(p, counts.get(p.id, 0)) for p in rows],
        total=total,
        page=page,
        next=url_for("api.projects", page=page + 1, _external=True) if has_next else None,
    )


@bp.get("/projects/<slug>")
def project(slug: str):
    """One member project with repositories, links and SDG evidence."""
    row = project_with_details(slug)
    if row is None:
        abort(404)
    return jsonify(project_json(row, open_item_counts().get(row.id, 0), detail=True))


@bp.get("/items")
def items():
    """Backlog items with the same filters as the backlog page."""
    filters = parse_filters(request.args)
    result = find_items(
        filters,
        page_size=current_app.config["BACKLOG_PAGE_SIZE"],
        reporting_currency=current_app.config["REPORTING_CURRENCY"],
    )
    next_url = (
        url_for("api.items", **filters.as_args(page=filters.page + 1), _external=True)
        if result.has_next
        else None
    )
    return jsonify(
        items=[item_json(i) for i in result.items],
        total=result.total,
        page=result.page,
        next=next_url,
    )


@bp.get("/items/<id:item_id>")
def item(item_id: int):
    """One visible backlog item."""
    row = visible_item(item_id)
    if row is None:
        _gone_or_404(item_id)
    return jsonify(item_json(row))


def _gone_or_404(item_id: int):
    """410 with the date for an item deleted on the forge, 404 otherwise (never shown, or private)."""
    deleted_at = deleted_item_date(item_id)
    if deleted_at is None:
        abort(404)
    from flask_babel import gettext as _

    response = jsonify(error={"status": 410, "message": _("This item was removed on the forge on %(date)s.",
                                                          date=deleted_at.date().isoformat()),
                              "deleted_at": _iso(deleted_at)})
    response.status_code = 410
    abort(response)


@bp.get("/items/<id:item_id>/ledger")
def item_ledger(item_id: int):
    """Every received pledge of a visible item (funder name or null for anonymous), its escrow, refunds and
    payouts; pledges awaiting payment as a count only."""
    from marketplace.pledges.transparency import item_pledges

    row = visible_item(item_id)
    if row is None:
        _gone_or_404(item_id)
    return jsonify(
        item=row.id,
        escrow=[{"currency": f.currency, "amount_minor": f.held_minor} for f in row.funding if f.held_minor],
        pledges=item_pledges(row.id),
        pledges_awaiting_payment=awaiting_payment(row.id),
        payouts=public_item_payouts(row.id),
    )


@bp.get("/ledger")
def ledger_summary():
    """Totals per currency from the ledger entries, and the reconciliation result."""
    from marketplace.ledger.check import check
    from marketplace.pledges.transparency import totals

    violations = check()
    return jsonify(totals=totals(), reconciled=not violations, violations=len(violations))
