"""The backlog query: full-text search, filters, sort and pagination.

Search (issue 14). One parser, :func:`parse_search`, turns the search text into
terms for both backends, and both backends index the same document: the item's
title and body, its project's name and slug, and its repository's owner and
name (``opencrvs`` finds OpenCRVS items by project). The rules:

- Words are runs of letters and digits; every other character separates them.
  A typed term with punctuation inside (``node.js``, ``setup.py``,
  ``GeoPointWidget.java``) is a phrase of its words (``node`` followed by
  ``js``). SQLite's unicode61 tokenizer splits text this way; on PostgreSQL the
  document's ASCII punctuation becomes spaces before the parser runs, else it
  would keep ``node.js`` as one "host" token that no query made of words can
  match.
- Accents do not matter: PostgreSQL's ``unaccent`` dictionary, SQLite's
  ``remove_diacritics 2`` ("São Tomé" is found by ``Sao Tome``).
- The last word is a prefix (``immuniz`` finds "immunization"), from
  ``MIN_PREFIX`` characters on: shorter prefixes match most of the backlog.
- Text-search configuration, chosen deliberately: the backlog holds English,
  French, Spanish and Portuguese issues. English stemming alone would mangle
  the others' words and drop words that are English stop words but
  meaningful elsewhere ("as", "do", "no" in Portuguese); plain tokens alone
  would lose "immunizations" for ``immunization``. So every document is
  indexed twice: as unaccented lower-case tokens with no stop words
  (``backlog_simple``), and as unaccented English stems (``backlog_english``;
  SQLite: the Porter tokenizer). A term matches when its tokens match as a
  phrase (the last one as a prefix) or its stems match as a phrase. No
  language guesses per issue, which would fail on short, mixed texts. Known
  difference between the backends: PostgreSQL stems with Snowball English
  (Porter 2) and SQLite with the original Porter; a few words stem apart.
  Snowball also drops English stop words, so on PostgreSQL a term whose
  stems lost a word (``sign-in``, ``add-on``) matches by its tokens only,
  as SQLite's Porter tokenizer (which keeps them) would. Beyond stems, the
  documents differ where ``unaccent`` folds a letter that SQLite's
  ``remove_diacritics`` keeps (``ß``, ``æ``, ``ﬁ``, letters with a stroke
  ``ø ł đ ð``, full-width forms: ``strasse`` finds "straße" and ``lodz``
  finds "Łódź" on PostgreSQL only) and at
  numbers that are not digits (``x²y``); the property test in
  ``tests/backlog/test_search.py`` leaves those out and says why.
- On PostgreSQL the document is a stored ``tsvector`` column kept by a
  trigger (migration 0016), never computed per row at query time: at 100,000
  items a prefix matching most of them must stay cheap (an earlier attempt
  that computed it took 7 s for ``form``). Its GIN index is on
  ``backlog_indexed_document(search_document)``, an identity priced so that
  the planner ANDs the index's bitmap with the listing index's instead of
  reading every row's document; the query uses that expression.
- Operators and quotes typed by a visitor never reach a query parser as
  syntax: terms are rebuilt from their words.
- The parser splits a word only where both backends split it: at ASCII
  punctuation and symbols, whitespace and control characters. Other
  characters (combining marks, non-ASCII punctuation and symbols, emoji,
  format characters such as the zero-width non-joiner) stay in the word and
  each backend's own tokenizer splits the word as it split the document.
  Splitting finer than a backend would make a phrase that its document never
  holds: Devanagari, Thai or Hebrew vowel signs are marks, not letters, and
  PostgreSQL keeps ``हिन्दी`` as one token. A word without a letter or a digit
  is dropped (an emoji alone matches nothing on either backend).
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Mapping

from flask_babel import gettext as _
from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.orm import aliased, contains_eager, defer, joinedload, selectinload

from marketplace.backlog.models import BacklogItem, ItemFunding, ItemLabel, PullRequest
from marketplace.backlog.queries import state_condition
from marketplace.errors import BadFilter
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.projects.models import MemberProject, ProjectSdg
from marketplace.reports.models import ProjectCountry
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
MATCHED = ("1",)  # matched=1: only items whose escrow holds a matching pool's money
TRAINING = ("1",)  # training=1: only items a maintainer marked for training (issue 19)

MIN_PREFIX = 3
# Built by migration 0016: the stored document, its configurations and tables.
# PG_DOCUMENT must stay identical to the expression of ix_backlog_item_search.
PG_DOCUMENT = "backlog_indexed_document(backlog_item.search_document)"
PG_TOKENS_CONFIG = "backlog_simple"
PG_STEMS_CONFIG = "backlog_english"
SQLITE_TOKENS_TABLE = "backlog_item_fts"
SQLITE_STEMS_TABLE = "backlog_item_fts_stem"
# Letters and digits; "_" is a separator (as in unicode61 and PostgreSQL's parser).
_WORD = re.compile(r"[^\W_]+")
# Where the parser splits a part into words: ASCII characters other than
# letters and digits, and control characters and lone surrogates (neither can
# reach the database). Everything else is left to the backends' tokenizers.
_SEPARATOR = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x9f\ud800-\udfff]+")
_TOKENS = table(SQLITE_TOKENS_TABLE, column("rowid"))
_STEMS = table(SQLITE_STEMS_TABLE, column("rowid"))
# The pools' match rows, named here as a table so that the backlog does not import the pools.
_POOL_MATCH = table("pool_match", column("item_id"), column("state"))
# Training items (marketplace.training), named here likewise.
_TRAINING_ITEM = table("training_item", column("item_id"))


@dataclass(frozen=True)
class BacklogFilters:
    """Validated backlog query parameters. ``None`` means "no filter"."""

    q: str | None = None
    project: str | None = None
    sdg: int | None = None
    country: str | None = None  # a deployment country of the project (ISO 3166-1 alpha-2)
    label: str | None = None
    state: str = "open"
    forge: str | None = None
    funded: str | None = None
    matched: str | None = None  # "1": only items a matching pool's money is in
    training: str | None = None  # "1": only training items
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
    unknown state, forge, funded or matched value, sort, SDG outside 1–17, a page outside
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
    # As the API document says: at most 255 characters as given (blanks around it count too).
    if label is not None and len(args.get("label")) > 255:
        raise BadFilter("label", _("Labels are at most 255 characters."))
    return BacklogFilters(
        q=q,
        project=project,
        sdg=_int(args, "sdg", 1, 17, _("sdg must be a number from 1 to 17.")),
        country=_country(args),
        label=label,
        state=_choice(args, "state", STATES, "open"),
        forge=_choice(args, "forge", tuple(k.value for k in ForgeKind), None),
        funded=_choice(args, "funded", FUNDED, None),
        matched=_choice(args, "matched", MATCHED, None),
        training=_choice(args, "training", TRAINING, None),
        sort=_choice(args, "sort", SORTS, "updated"),
        page=_int(args, "page", 1, MAX_PAGE, _("page must be a number from 1 to %(n)d.", n=MAX_PAGE)) or 1,
    )


@dataclass(frozen=True)
class SearchTerm:
    """One typed term: its words, lower-cased and NFC-normalised, matched as a
    phrase; ``prefix`` when the last word matches as a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


def parse_search(q: str) -> list[SearchTerm]:
    """The terms of search text ``q``, in order: one per whitespace-separated
    part that has words, at most ``MAX_SEARCH_WORDS`` words in all.

    The last term's last word is a prefix when it has ``MIN_PREFIX``
    characters or more. An empty list when ``q`` has no words.
    """
    terms: list[SearchTerm] = []
    budget = MAX_SEARCH_WORDS
    for part in unicodedata.normalize("NFC", q).split():
        words = []
        for word in _SEPARATOR.split(part):
            # A backend may split one word into several (at marks, emoji,
            # non-ASCII punctuation): each of those counts against the budget.
            runs = len(_WORD.findall(word))
            if not runs or runs > budget:
                continue
            words.append(word.lower())
            budget -= runs
        if words:
            terms.append(SearchTerm(tuple(words)))
        if budget <= 0:
            break
    if terms and _last_run_length(terms[-1].words[-1]) >= MIN_PREFIX:
        terms[-1] = replace(terms[-1], prefix=True)
    return terms


def _country(args: Mapping[str, str]) -> str | None:
    """The ``country`` filter: two ASCII letters (ISO 3166-1 alpha-2), upper-cased."""
    value = _one(args, "country")
    if value is None:
        return None
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise BadFilter("country", _("country must be a two-letter ISO 3166-1 code, such as KE."))
    return value.upper()


def _last_run_length(word: str) -> int:
    # The prefix a backend matches: the word's last run of letters, digits
    # and their combining marks (trailing emoji or punctuation aside).
    def in_run(char: str) -> bool:
        return unicodedata.category(char)[0] in "LMN"

    end = len(word)
    while end and not in_run(word[end - 1]):
        end -= 1
    start = end
    while start and in_run(word[start - 1]):
        start -= 1
    return end - start


def search_words(q: str) -> list[str]:
    """The words of a search text, in order, without operators or quotes."""
    return [word for term in parse_search(q) for word in term.words]


def _pg_phrase(term: SearchTerm, prefix: bool) -> str:
    # Words hold only letters and digits: quoted, nothing in them is syntax.
    quoted = [f"'{word}'" for word in term.words]
    if prefix:
        quoted[-1] += ":*"
    return " <-> ".join(quoted)


def _fts5_phrase(term: SearchTerm, prefix: bool) -> str:
    return '"' + " ".join(term.words) + '"' + (" *" if prefix else "")


def search_condition(q: str):
    """SQL condition matching items whose search document has every term of ``q``.

    Returns ``false()`` when ``q`` has no words (only punctuation).
    """
    terms = parse_search(q)
    if not terms:
        return false()
    if db.engine.dialect.name == "postgresql":
        # One tsquery, so the planner makes one GIN index probe.
        tokens_config = literal_column(f"'{PG_TOKENS_CONFIG}'::regconfig")
        stems_config = literal_column(f"'{PG_STEMS_CONFIG}'::regconfig")
        query = None
        for term in terms:
            tokens = func.to_tsquery(tokens_config, _pg_phrase(term, term.prefix))
            stems = func.to_tsquery(stems_config, _pg_phrase(term, False))
            # English stemming drops stop words, also from a phrase: "add-on"
            # would be 'add' alone and find every "add". SQLite's Porter
            # tokenizer keeps them, so a term whose stems lost a word (fewer
            # nodes than its tokens) is matched by its tokens only.
            whole = func.numnode(stems) == func.numnode(func.to_tsquery(tokens_config, _pg_phrase(term, False)))
            either = case((whole, tokens.op("||")(stems)), else_=tokens)
            query = either if query is None else query.op("&&")(either)
        return literal_column(PG_DOCUMENT).op("@@")(query)
    conditions = []
    for term in terms:
        by_tokens = select(_TOKENS.c.rowid).where(
            literal_column(SQLITE_TOKENS_TABLE).op("MATCH")(_fts5_phrase(term, term.prefix)))
        by_stems = select(_STEMS.c.rowid).where(
            literal_column(SQLITE_STEMS_TABLE).op("MATCH")(_fts5_phrase(term, False)))
        conditions.append(or_(BacklogItem.id.in_(by_tokens), BacklogItem.id.in_(by_stems)))
    return and_(*conditions)


def matched_condition():
    """SQL condition: a matching pool's match is held in the item's escrow now
    (``pool_match`` rows in state ``held``; a round's share counts too)."""
    return exists().where(_POOL_MATCH.c.item_id == BacklogItem.id, _POOL_MATCH.c.state == "held")


def _filtered(filters: BacklogFilters, joined: bool = True):
    """The SELECT of visible items matching ``filters`` (no order). Without
    ``joined`` the repository and project are joined only when a filter needs
    them (every item has both: the joins never drop a row), so a count can
    read one index."""
    stmt = select(BacklogItem).where(BacklogItem.hidden.is_(False))
    if joined or filters.project or filters.sdg or filters.country or filters.forge:
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
    if filters.country:
        # Deployment countries come from the DPG screening records (marketplace.reports.screening).
        stmt = stmt.where(exists().where(ProjectCountry.project_id == MemberProject.id,
                                         ProjectCountry.kind == "deployment",
                                         ProjectCountry.country == filters.country))
    if filters.label:
        stmt = stmt.where(
            exists().where(ItemLabel.item_id == BacklogItem.id, ItemLabel.name == filters.label)
        )
    if filters.forge:
        stmt = stmt.where(Repository.forge == ForgeKind(filters.forge))
    if filters.funded:
        held = exists().where(ItemFunding.item_id == BacklogItem.id, ItemFunding.held_minor > 0)
        stmt = stmt.where(held if filters.funded == "funded" else ~held)
    if filters.matched:
        stmt = stmt.where(matched_condition())
    if filters.training:
        stmt = stmt.where(exists().where(_TRAINING_ITEM.c.item_id == BacklogItem.id))
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
    if filters.q and db.engine.dialect.name == "postgresql":
        # A search's count ANDs the full-text index's bitmap with the listing
        # index's, and the planner hands the heap scan to two parallel workers:
        # at 100,000 items (`form`: 68% of them) 31-48 ms and three processes,
        # against 18-24 ms in one. Pages are many small requests on few cores,
        # so this transaction's later statements run without workers too.
        db.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
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


def _project_details_deferred() -> list:
    # An item's page or a listing shows its project's slug, name and fee: the
    # description and the registry's lists (JSON, parsed per row) are read
    # only when something asks for them.
    return [defer(column) for column in (MemberProject.description, MemberProject.aliases,
                                         MemberProject.licences, MemberProject.types,
                                         MemberProject.sectors, MemberProject.organisations)]


def find_items(filters: BacklogFilters, *, page_size: int, reporting_currency: str,
               cursor: str | None = None, count: bool = True, with_body: bool = True) -> BacklogPage:
    """Run the backlog query for one page: the items with repository, project,
    labels, funding and solver loaded (one statement), and the number of matching items
    (:func:`count_items`: exact up to :data:`COUNT_CAP`).

    With ``cursor`` (from :func:`encode_cursor`) the page starts after the
    item it names (keyset pagination: no OFFSET) and ``page`` is ignored.
    Otherwise ``page`` selects by number; pages past the capped count hold no
    items. Without ``with_body`` the items' bodies are not read (a list page
    shows none: up to 25 bodies of up to 1 MB each); reading one then raises.
    Raises :class:`BadCursor`."""
    # The page's ids first, from the filters' indexes alone (sorted by the
    # keys, limited), then those rows with their repository and project: a
    # filter matching few items (an SDG and a label) otherwise walks the
    # listing index joining every candidate's full row (7,000 buffers against
    # 700 at 100,000 items). One statement either way.
    ids, keys = _sorted(filters, _filtered(filters, joined=False), reporting_currency)
    ids = ids.with_only_columns(BacklogItem.id).order_by(*(key.desc() for key in keys))
    total, exact = count_items(filters) if count else (0, False)
    offset = 0
    if cursor is not None:
        ids = ids.where(tuple_(*keys) < tuple_(*decode_cursor(cursor, filters.sort)))
    else:
        offset = (filters.page - 1) * page_size
    page = ids.limit(page_size + 1).offset(offset).subquery("page")
    # FROM the page's ids first: with the joined loads below the statement
    # joins more tables than the planner reorders (join_collapse_limit), so the
    # written order is the plan's: 26 ids, then their rows by primary key.
    rows = (select(BacklogItem).select_from(page).join(BacklogItem, BacklogItem.id == page.c.id)
            .join(Repository, BacklogItem.repository_id == Repository.id)
            .join(MemberProject, Repository.project_id == MemberProject.id))
    stmt, keys = _sorted(filters, rows, reporting_currency)
    stmt = stmt.order_by(*(key.desc() for key in keys))
    items: list[BacklogItem] = []
    if not with_body:
        stmt = stmt.options(defer(BacklogItem.body, raiseload=True))
    if cursor is not None or offset < total:
        # Labels, funding and solver joined too (the limit is on the ids, so
        # the joined rows stay a few per item): one statement, not three.
        items = list(
            db.session.scalars(
                stmt.options(
                    contains_eager(BacklogItem.repository).contains_eager(Repository.project)
                    .options(*_project_details_deferred()),
                    joinedload(BacklogItem.labels),
                    joinedload(BacklogItem.funding),
                    joinedload(BacklogItem.solved_by).joinedload(PullRequest.repository),
                )
            ).unique()
        )
    more = len(items) > page_size
    items = items[:page_size]
    next_cursor = encode_cursor(filters, items[-1], reporting_currency) if more and items else None
    return BacklogPage(items, total, 1 if cursor is not None else filters.page, page_size, exact, next_cursor)


@cache
def _visible_item_statement():
    # Built once per process (the item id is bound per request): building the
    # joined loads and computing the statement's cache key cost more than its
    # execution on every item page.
    return (
        select(BacklogItem)
        .where(BacklogItem.id == bindparam("item_id", type_=Integer()), BacklogItem.hidden.is_(False))
        .options(
            joinedload(BacklogItem.repository, innerjoin=True).joinedload(Repository.project, innerjoin=True)
            .options(*_project_details_deferred()),
            joinedload(BacklogItem.labels),
            joinedload(BacklogItem.funding),
            joinedload(BacklogItem.solved_by).joinedload(PullRequest.repository),
        )
    )


def visible_item(item_id: int) -> BacklogItem | None:
    """A visible (not hidden) item with its repository, project, labels, funding
    and solver loaded, in one statement (joined: an item has a few labels and
    currencies, so the joined rows stay few)."""
    return db.session.scalars(_visible_item_statement(), {"item_id": item_id}).unique().first()


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
