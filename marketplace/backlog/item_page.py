"""The item page, built in one place.

The backlog gives the item itself (fields, rendered body, linked pull
requests, what a maintainer may do); each other domain contributes a section:
a function that returns its data and the partial template that shows it.
``templates/backlog/item.html`` includes the partials in the order of
:data:`SECTIONS`. A view that shows the page again with its form's errors (the
pledge form, the claim form) passes them to :func:`render_item_page` under its
section's name, so the page is built the same way every time."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace

from flask import render_template
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import Integer, bindparam, exists, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem, ItemLink, PullRequest
from marketplace.backlog.queries import work_went_to
from marketplace.claims import item_section as claims_section
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.forges.urls import path_key
from marketplace.funds import item_section as funds_section
from marketplace.httpcache.service import shared_fragment
from marketplace.markdown import ForgeLinks, RenderCache, render_markdown
from marketplace.notifications.links import url_for_public
from marketplace.payouts import item_section as payouts_section
from marketplace.pledges import item_section as pledges_section
from marketplace.pools import item_section as pools_section
from marketplace.presence import item_section as presence_section
from marketplace.projects.service import may_manage
from marketplace.roles import item_section as follow_section
from marketplace.training import item_section as training_section


@dataclass(frozen=True)
class Section:
    """One domain's part of the item page: ``name`` is the template variable its
    data is under, ``template`` the partial that shows it, ``build(item, **again)``
    its data (``again``: the form as typed and its error, when given).

    ``probes(item)``, when given, returns ``{key: SQL boolean}`` (e.g. "the item
    has a pledge"): the page asks every section's probes in one statement and
    passes the answers as ``build(item, probed={key: bool}, ...)``, so a section
    with nothing to show reads nothing (most items have no pledge, claim or
    payout: the page costs two statements instead of a dozen). The statement
    is built once per process (:func:`probe`): ``probes`` is given a stand-in
    whose ``id`` and ``repository.project_id`` are bind parameters, and may
    read nothing else of the item."""

    name: str
    template: str
    build: Callable[..., dict]
    probes: Callable[[BacklogItem], dict] | None = None


SECTIONS: tuple[Section, ...] = (
    Section("pledges", pledges_section.TEMPLATE, pledges_section.section, pledges_section.probes),
    Section("pools", pools_section.TEMPLATE, pools_section.section, pools_section.probes),
    Section("training", training_section.TEMPLATE, training_section.section, training_section.probes),
    Section("funds", funds_section.TEMPLATE, funds_section.section, funds_section.probes),
    Section("claims", claims_section.TEMPLATE, claims_section.section, claims_section.probes),
    Section("payouts", payouts_section.TEMPLATE, payouts_section.section, payouts_section.probes),
    Section("presence", presence_section.TEMPLATE, presence_section.section, presence_section.probes),
    Section("follow", follow_section.TEMPLATE, follow_section.section, follow_section.probes),
)
LINKS_PROBE = "backlog__links"


@cache
def _probe_statement(sections: tuple[Section, ...]):
    # Built once: the statement and its SQLAlchemy cache key are the same for
    # every item; the item's and its project's ids are bound per request.
    target = SimpleNamespace(id=bindparam("probe_item_id", type_=Integer()),
                             repository=SimpleNamespace(project_id=bindparam("probe_project_id", type_=Integer())))
    columns = [exists().where(ItemLink.item_id == target.id, ItemLink.removed.is_(False)).label(LINKS_PROBE)]
    for section in sections:
        if section.probes is not None:
            columns += [condition.label(f"{section.name}__{key}")
                        for key, condition in section.probes(target).items()]
    return select(*columns)


def probe(item: BacklogItem, sections: tuple[Section, ...] = SECTIONS) -> dict[str, dict[str, bool]]:
    """Every section's probes (and whether any pull request links the item) in
    one statement: ``{section name: {key: bool}}``, the item's own under
    ``"backlog"`` (``{"links": bool}``)."""
    row = db.session.execute(_probe_statement(sections), {
        "probe_item_id": item.id, "probe_project_id": item.repository.project_id}).one()
    answers: dict[str, dict[str, bool]] = {}
    for label, value in row._mapping.items():
        name, _, key = label.partition("__")
        answers.setdefault(name, {})[key] = bool(value)
    return answers


def item_links(item: BacklogItem) -> list[ItemLink]:
    """Links from pull/merge requests to ``item`` that count (not removed, request not deleted)."""
    return list(db.session.scalars(
        select(ItemLink)
        .join(PullRequest, PullRequest.id == ItemLink.pull_request_id)
        .where(ItemLink.item_id == item.id, ItemLink.removed.is_(False), PullRequest.deleted_at.is_(None))
        .options(selectinload(ItemLink.pull_request).selectinload(PullRequest.repository))
        .order_by(PullRequest.forge_created_at, ItemLink.id)
    ))


# Rendered bodies by (item id, forge updated_at, repository host, owner and
# name): an item's page does not render Markdown again until the forge reports
# a change or the repository is renamed. Bounded per process
# to 1,000 bodies and 8 MB of HTML strings (as Python holds them: a body of
# emoji takes 4 bytes a character), least recently used first out. A reference to another issue links here when that
# issue was in the backlog at rendering time; one added later is linked here
# from the item's next forge update (or the process's restart).
BODY_CACHE = RenderCache(max_entries=1_000, max_bytes=8_000_000)


def forge_links(item: BacklogItem) -> ForgeLinks:
    """How references in ``item``'s text link: to the forge of its repository,
    or to the item here when the issue is in the backlog (and visible)."""
    repo = item.repository

    def local_item(owner: str, name: str, number: int) -> str | None:
        found = db.session.scalar(
            select(BacklogItem.id).join(Repository, BacklogItem.repository_id == Repository.id)
            .where(Repository.host == repo.host, Repository.path_key == path_key(owner, name),
                   BacklogItem.number == number, BacklogItem.hidden.is_(False),
                   BacklogItem.deleted_at.is_(None))
        )
        # On PUBLIC_URL, never on the request's Host: the rendering is cached
        # and shown to everyone (a stranger's Host would poison it).
        return url_for_public("backlog.item", item_id=found) if found is not None else None

    kind = "gitlab" if repo.forge == ForgeKind.gitlab else "github"
    return ForgeLinks(f"https://{repo.host}", repo.owner, repo.name, kind=kind, local_item=local_item)


def item_body_html(item: BacklogItem) -> Markup:
    """``item``'s body rendered as the forge shows it: from :data:`BODY_CACHE`
    (this process), else from the fragment store every worker shares
    (:func:`~marketplace.httpcache.service.shared_fragment`, a day at most, so
    a reference to an issue added to the backlog later links here by then),
    else rendered."""
    repo = item.repository
    # References link into the repository: a rename renders them again.
    key = (item.id, item.forge_updated_at, repo.host, repo.owner, repo.name)
    digest = hashlib.blake2b(f"{key!r}\0{item.body or ''}".encode(), digest_size=16).hexdigest()
    return BODY_CACHE.get_or_render(key, item.body, lambda: Markup(shared_fragment(
        f"item-body:{item.id}:{digest}", lambda: render_markdown(item.body, links=forge_links(item)))))


def item_page_context(item: BacklogItem, *, again: dict[str, dict] | None = None) -> dict:
    """The template context of the item page: the item's own fields and one entry
    per section (``sections`` lists them in page order). ``again`` maps a section
    name to the keyword arguments its builder takes back (``form``, ``error``)."""
    again = again or {}
    probed = probe(item)
    context = {
        "item": item,
        "body_html": item_body_html(item),
        "links": item_links(item) if probed["backlog"]["links"] else [],
        "may_manage": may_manage(current_user, item.repository.project),
        "work_target": work_went_to(item) if item.closed_as_not_planned else None,
        "sections": SECTIONS,
    }
    for section in SECTIONS:
        answers = {"probed": probed[section.name]} if section.name in probed else {}
        context[section.name] = section.build(item, **again.get(section.name, {}), **answers)
    return context


def render_item_page(item: BacklogItem, *, again: dict[str, dict] | None = None, status: int = 200):
    """The item page as a (body, status) answer; see :func:`item_page_context` for ``again``."""
    return render_template("backlog/item.html", **item_page_context(item, again=again)), status
