"""The admin blueprint (every page under /admin is for the fiscal host) and the
helpers its listing pages share: page number, search text, ``LIKE`` pattern, pagination."""
from __future__ import annotations

from flask import Blueprint, request
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from marketplace.errors import BadFilter
from marketplace.extensions import db
from marketplace.validation import ascii_int

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50
MAX_PAGE = 100_000
MAX_SEARCH = 200


def page_number() -> int:
    """The ``page`` query parameter: an ASCII integer in 1..MAX_PAGE, else 1."""
    page = ascii_int(request.args.get("page", "1"))
    return page if page is not None and 1 <= page <= MAX_PAGE else 1


def search_text() -> str:
    """The ``q`` query parameter, stripped. Raises :class:`marketplace.errors.BadFilter`
    (a 400 that says why, as the public backlog does) when it is longer than MAX_SEARCH
    characters, rather than searching for a silently shortened text."""
    text = (request.args.get("q") or "").strip()
    if len(text) > MAX_SEARCH:
        raise BadFilter("q", _("A search is at most %(count)d characters.", count=MAX_SEARCH))
    return text


def like(text: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern that finds ``text`` anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def paginate(stmt: Select, order: list) -> Pagination:
    """One page (PAGE_SIZE rows, page from :func:`page_number`) of ``stmt`` ordered by ``order``,
    with the total; a page past the end is empty (no 404)."""
    return db.paginate(stmt.order_by(*order), page=page_number(), per_page=PAGE_SIZE, max_per_page=PAGE_SIZE,
                       error_out=False)


def listing(pagination: Pagination) -> dict:
    """The template values the admin pager expects: rows, total, page, page_size."""
    return {"rows": pagination.items, "total": pagination.total, "page": pagination.page, "page_size": PAGE_SIZE}
