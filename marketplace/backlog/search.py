"""The backlog query: full-text search, filters, sort and pagination.

Full-text search uses PostgreSQL's ``websearch_to_tsquery`` over an expression
GIN index on PostgreSQL, and an FTS5 table kept by triggers on SQLite. Both are
fed only the words of the search text, so operators and quotes typed by a
visitor never reach a query parser as syntax.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Mapping

from flask_babel import gettext as _
from sqlalchemy import (
    and_,
    column,
    exists,
    false,
    func,
    literal_column,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.orm import aliased, contains_eager, selectinload

from marketplace.backlog.models import BacklogItem, ItemFunding, ItemLabel, PullRequest
from marketplace.backlog.queries import state_condition
from marketplace.errors import BadFilter
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.projects.models import MemberProject, ProjectSdg
from marketplace.validation import ascii_int

MAX_QUERY_LENGTH = 500
MAX_PAGE = 100_000
# Counts stop here: past it a list says "more than 10,000 items" (as large forges
# do) instead of counting every match; page numbers stop at this depth too
# (keyset cursors, the API's ``next``, go further).
COUNT_CAP = 10_000
MAX_SEARCH_WORDS = 32
SORTS = ("updated", "newest", "funded")
STATES = ("open", "solved", "closed", "all")
FUNDED = ("funded", "unfunded")

# Must stay identical to the expression of ix_backlog_item_search (migrations).
PG_SEARCH_CONFIG = "english"
PG_SEARCH_VECTOR = (
    "to_tsvector('english', coalesce(backlog_item.title, '') || ' ' || "
    "coalesce(backlog_item.body, ''))"
)
_WORD = re.compile(r"\w+", re.UNICODE)
_FTS = table("backlog_item_fts", column("rowid"))


@dataclass(frozen=True)
class BacklogFilters:
    """Validated backlog query parameters. ``None`` means "no filter"."""

    q: str | None = None
    project: str | None = None
    sdg: int | None = None
    label: str | None = None
    state: str = "open"
    forge: str | None = None
    funded: str | None = None
    sort: str = "updated"
    page: int = 1

    def as_args(self, **changes) -> dict:
        """Query-string arguments reproducing these filters (defaults left out)."""
        values = replace(self, **changes) if changes else self
        defaults = BacklogFilters()
        return {
            key: getattr(values, key)
            for key in self.__dataclass_fields__
            if getattr(values, key) not in (None, "") and getattr(values, key) != getattr(defaults, key)
        }


@dataclass(frozen=True)
class BacklogPage:
    """One page of items, with the number of matching items: exact up to
    :data:`COUNT_CAP`, else ``total`` is the cap and ``total_exact`` False.
    ``next_cursor`` continues after the last item (keyset), None on the last page."""

    items: list[BacklogItem]
    total: int
    page: int
    page_size: int
    total_exact: bool = True
    next_cursor: str | None = None

    @property
    def pages(self) -> int:
        """Page numbers reachable by number (at most ``COUNT_CAP / page_size`` when the count is capped)."""
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _one(args: Mapping[str, str], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _choice(args, key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = _one(args, key)
    if value is None:
        return default
    if value not in allowed:
        raise BadFilter(
            key,
            _("%(param)s must be one of: %(allowed)s.", param=key, allowed=", ".join(allowed)),
        )
    return value


def _int(args, key: str, low: int, high: int, message: str) -> int | None:
    value = _one(args, key)
    if value is None:
        return None
    number = ascii_int(value)
    if number is None or not low <= number <= high:
        raise BadFilter(key, message)
    return number


def parse_filters(args: Mapping[str, str]) -> BacklogFilters:
    """Validate query-string ``args`` into :class:`BacklogFilters`.

    Raises :class:`~marketplace.errors.BadFilter` naming the parameter for an
    unknown state, forge, funded value, sort, SDG outside 1–17, a page outside
    1–100000, a search longer than 500 characters or an unknown project.
    """
    return _parse(args)


def lenient_filters(args: Mapping[str, str]) -> BacklogFilters:
    """The filters of ``args`` with every invalid value left at its default.

    Used to redisplay the form as the visitor filled it beside an error message.
    """
    values = dict(args.items())
    while True:
        try:
            return _parse(values)
        except BadFilter as exc:
            values.pop(exc.parameter, None)


def _parse(args: Mapping[str, str]) -> BacklogFilters:
    q = args.get("q") or None
    if q is not None:
        if len(q) > MAX_QUERY_LENGTH:
            raise BadFilter("q", _("Search text is limited to %(n)d characters.", n=MAX_QUERY_LENGTH))
        q = " ".join(q.split()) or None
    project = _one(args, "project")
    if project is not None and db.session.scalar(
        select(MemberProject.id).where(MemberProject.slug == project)
    ) is None:
        raise BadFilter("project", _("There is no member project %(slug)s.", slug=repr(project)[:80]))
    label = _one(args, "label")
    if label is not None and len(label) > 255:
        raise BadFilter("label", _("Labels are at most 255 characters."))
    return BacklogFilters(
        q=q,
        project=project,
        sdg=_int(args, "sdg", 1, 17, _("sdg must be a number from 1 to 17.")),
        label=label,
        state=_choice(args, "state", STATES, "open"),
        forge=_choice(args, "forge", tuple(k.value for k in ForgeKind), None),
        funded=_choice(args, "funded", FUNDED, None),
        sort=_choice(args, "sort", SORTS, "updated"),
        page=_int(args, "page", 1, MAX_PAGE, _("page must be a number from 1 to %(n)d.", n=MAX_PAGE)) or 1,
    )


def search_words(q: str) -> list[str]:
    """The words of a search text, in order, without operators or quotes."""
    return _WORD.findall(q)[:MAX_SEARCH_WORDS]


def search_condition(q: str):
    """SQL condition matching items whose title or body contain every word of ``q``.

    Returns ``false()`` when ``q`` has no words (only punctuation).
    """
    words = search_words(q)
    if not words:
        return false()
    if db.engine.dialect.name == "postgresql":
        # websearch_to_tsquery never raises on user input; feeding it only the
        # words makes the two backends agree (every word must match).
        return literal_column(PG_SEARCH_VECTOR).op("@@")(
            func.websearch_to_tsquery(literal_column(f"'{PG_SEARCH_CONFIG}'"), " ".join(words))
        )
    # FTS5: each word quoted as a string, so nothing in it is query syntax.
    fts_query = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    matches = select(_FTS.c.rowid).where(text("backlog_item_fts MATCH :fts").bindparams(fts=fts_query))
    return BacklogItem.id.in_(matches)


def _filtered(filters: BacklogFilters, joined: bool = True):
    """The SELECT of visible items matching ``filters`` (no order). Without
    ``joined`` the repository and project are joined only when a filter needs
    them (every item has both: the joins never drop a row), so a count can
    read one index."""
    stmt = select(BacklogItem).where(BacklogItem.hidden.is_(False))
    if joined or filters.project or filters.sdg or filters.forge:
        stmt = (stmt.join(Repository, BacklogItem.repository_id == Repository.id)
                .join(MemberProject, Repository.project_id == MemberProject.id))
    if filters.state != "all":
        stmt = stmt.where(state_condition(filters.state))
    if filters.q:
        stmt = stmt.where(search_condition(filters.q))
    if filters.project:
        stmt = stmt.where(MemberProject.slug == filters.project)
    if filters.sdg:
        stmt = stmt.where(
            exists().where(ProjectSdg.project_id == MemberProject.id, ProjectSdg.sdg == filters.sdg)
        )
    if filters.label:
        stmt = stmt.where(
            exists().where(ItemLabel.item_id == BacklogItem.id, ItemLabel.name == filters.label)
        )
    if filters.forge:
        stmt = stmt.where(Repository.forge == ForgeKind(filters.forge))
    if filters.funded:
        held = exists().where(ItemFunding.item_id == BacklogItem.id, ItemFunding.held_minor > 0)
        stmt = stmt.where(held if filters.funded == "funded" else ~held)
    return stmt


def _sorted(filters: BacklogFilters, stmt, reporting_currency: str):
    """``(stmt, keys)``: ``stmt`` joined for the sort, and the sort's key
    expressions, all descending, ``id`` last (the tie-breaker)."""
    if filters.sort == "newest":
        return stmt, [BacklogItem.forge_created_at, BacklogItem.id]
    if filters.sort == "funded":
        # An alias: joined as the table itself, the `funded` filter's EXISTS would correlate to this join.
        reporting = aliased(ItemFunding)
        stmt = stmt.outerjoin(
            reporting,
            and_(reporting.item_id == BacklogItem.id, reporting.currency == reporting_currency),
        )
        return stmt, [func.coalesce(reporting.held_minor, 0), BacklogItem.forge_updated_at, BacklogItem.id]
    return stmt, [BacklogItem.forge_updated_at, BacklogItem.id]


def build_query(filters: BacklogFilters, reporting_currency: str):
    """The SELECT of visible items matching ``filters``, sorted with ``id`` as tie-breaker."""
    stmt, keys = _sorted(filters, _filtered(filters), reporting_currency)
    return stmt.order_by(*(key.desc() for key in keys))


def count_items(filters: BacklogFilters, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """``(total, exact)``: the number of visible items matching ``filters``,
    counting ids only (no row is read beyond the indexes the filters use) and
    stopping at ``cap`` + 1; past ``cap`` returns ``(cap, False)``."""
    ids = _filtered(filters, joined=False).with_only_columns(BacklogItem.id).limit(cap + 1)
    total = db.session.scalar(select(func.count()).select_from(ids.subquery()))
    return (cap, False) if total > cap else (total, True)


class BadCursor(BadFilter):
    """A ``cursor`` that this server did not write for this sort."""


def encode_cursor(filters: BacklogFilters, item: BacklogItem, reporting_currency: str) -> str:
    """The opaque cursor after ``item`` in ``filters``' sort: URL-safe base64
    of ``[sort, key values…]`` (times as ISO strings)."""
    if filters.sort == "newest":
        values = [item.forge_created_at.isoformat(), item.id]
    elif filters.sort == "funded":
        held = next((f.held_minor for f in item.funding if f.currency == reporting_currency), 0)
        values = [held, item.forge_updated_at.isoformat(), item.id]
    else:
        values = [item.forge_updated_at.isoformat(), item.id]
    raw = json.dumps([filters.sort, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list:
    """The key values of a cursor written by :func:`encode_cursor` for ``sort``.
    Raises :class:`BadCursor` for anything else."""
    message = _("cursor is not one this server gave for this sort; start again without it.")
    try:
        if len(cursor) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        if not isinstance(value, list) or not value or value[0] != sort:
            raise ValueError
        keys = value[1:]
        shapes = {"newest": (str, int), "funded": (int, str, int)}.get(sort, (str, int))
        if len(keys) != len(shapes) or any(type(k) is not t for k, t in zip(keys, shapes)):
            raise ValueError
        return [datetime.fromisoformat(k) if isinstance(k, str) else k for k in keys]
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise BadCursor("cursor", message) from None


def find_items(filters: BacklogFilters, *, page_size: int, reporting_currency: str,
               cursor: str | None = None, count: bool = True) -> BacklogPage:
    """Run the backlog query for one page: the items with repository, project,
    labels and funding loaded, and the number of matching items
    (:func:`count_items`: exact up to :data:`COUNT_CAP`).

    With ``cursor`` (from :func:`encode_cursor`) the page starts after the
    item it names (keyset pagination: no OFFSET) and ``page`` is ignored.
    Otherwise ``page`` selects by number; pages past the capped count hold no
    items. Raises :class:`BadCursor`."""
    stmt, keys = _sorted(filters, _filtered(filters), reporting_currency)
    stmt = stmt.order_by(*(key.desc() for key in keys))
    total, exact = count_items(filters) if count else (0, False)
    offset = 0
    if cursor is not None:
        stmt = stmt.where(tuple_(*keys) < tuple_(*decode_cursor(cursor, filters.sort)))
    else:
        offset = (filters.page - 1) * page_size
    items: list[BacklogItem] = []
    if cursor is not None or offset < total:
        items = list(
            db.session.scalars(
                stmt.options(
                    contains_eager(BacklogItem.repository).contains_eager(Repository.project),
                    selectinload(BacklogItem.labels),
                    selectinload(BacklogItem.funding),
                    selectinload(BacklogItem.solved_by).selectinload(PullRequest.repository),
                )
                .limit(page_size + 1)
                .offset(offset)
            )
        )
    more = len(items) > page_size
    items = items[:page_size]
    next_cursor = encode_cursor(filters, items[-1], reporting_currency) if more and items else None
    return BacklogPage(items, total, 1 if cursor is not None else filters.page, page_size, exact, next_cursor)


def visible_item(item_id: int) -> BacklogItem | None:
    """A visible (not hidden) item with its repository, project, labels, funding and solver loaded."""
    return db.session.scalar(
        select(BacklogItem)
        .where(BacklogItem.id == item_id, BacklogItem.hidden.is_(False))
        .options(
            selectinload(BacklogItem.repository).selectinload(Repository.project),
            selectinload(BacklogItem.labels),
            selectinload(BacklogItem.funding),
            selectinload(BacklogItem.solved_by).selectinload(PullRequest.repository),
        )
    )


def deleted_item_date(item_id: int):
    """When the forge deleted item ``item_id`` (UTC), or None: the item is not
    deleted, or the forge kept it private (then it was never ours to show)."""
    return db.session.scalar(select(BacklogItem.deleted_at).where(
        BacklogItem.id == item_id, BacklogItem.deleted_at.is_not(None), BacklogItem.private_reason.is_(None)))


def project_with_details(slug: str) -> MemberProject | None:
    """A member project with its SDGs, repositories (and former names) and links loaded."""
    return db.session.scalar(
        select(MemberProject)
        .where(MemberProject.slug == slug)
        .options(
            selectinload(MemberProject.sdgs),
            selectinload(MemberProject.repositories).selectinload(Repository.aliases),
            selectinload(MemberProject.links),
        )
    )
