"""The item page, built in one place.

The backlog gives the item itself (fields, rendered body, linked pull
requests, what a maintainer may do); each other domain contributes a section:
a function that returns its data and the partial template that shows it.
``templates/backlog/item.html`` includes the partials in the order of
:data:`SECTIONS`. A view that shows the page again with its form's errors (the
pledge form, the claim form) passes them to :func:`render_item_page` under its
section's name, so the page is built the same way every time."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import render_template
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem, ItemLink, PullRequest
from marketplace.backlog.queries import work_went_to
from marketplace.claims import item_section as claims_section
from marketplace.extensions import db
from marketplace.markdown import render_markdown
from marketplace.payouts import item_section as payouts_section
from marketplace.pledges import item_section as pledges_section
from marketplace.pools import item_section as pools_section
from marketplace.projects.service import may_manage


@dataclass(frozen=True)
class Section:
    """One domain's part of the item page: ``name`` is the template variable its
    data is under, ``template`` the partial that shows it, ``build(item, **again)``
    its data (``again``: the form as typed and its error, when given)."""

    name: str
    template: str
    build: Callable[..., dict]


SECTIONS: tuple[Section, ...] = (
    Section("pledges", pledges_section.TEMPLATE, pledges_section.section),
    Section("pools", pools_section.TEMPLATE, pools_section.section),
    Section("claims", claims_section.TEMPLATE, claims_section.section),
    Section("payouts", payouts_section.TEMPLATE, payouts_section.section),
)


def item_links(item: BacklogItem) -> list[ItemLink]:
    """Links from pull/merge requests to ``item`` that count (not removed, request not deleted)."""
    return list(db.session.scalars(
        select(ItemLink)
        .join(PullRequest, PullRequest.id == ItemLink.pull_request_id)
        .where(ItemLink.item_id == item.id, ItemLink.removed.is_(False), PullRequest.deleted_at.is_(None))
        .options(selectinload(ItemLink.pull_request).selectinload(PullRequest.repository))
        .order_by(PullRequest.forge_created_at, ItemLink.id)
    ))


def item_page_context(item: BacklogItem, *, again: dict[str, dict] | None = None) -> dict:
    """The template context of the item page: the item's own fields and one entry
    per section (``sections`` lists them in page order). ``again`` maps a section
    name to the keyword arguments its builder takes back (``form``, ``error``)."""
    again = again or {}
    context = {
        "item": item,
        "body_html": render_markdown(item.body),
        "links": item_links(item),
        "may_manage": may_manage(current_user, item.repository.project),
        "work_target": work_went_to(item) if item.closed_as_not_planned else None,
        "sections": SECTIONS,
    }
    for section in SECTIONS:
        context[section.name] = section.build(item, **again.get(section.name, {}))
    return context


def render_item_page(item: BacklogItem, *, again: dict[str, dict] | None = None, status: int = 200):
    """The item page as a (body, status) answer; see :func:`item_page_context` for ``again``."""
    return render_template("backlog/item.html", **item_page_context(item, again=again)), status
