"""The pools' part of the item page (template ``pools/_item_section.html``):
"matched by POOL" for the matches the item's escrow holds, the live pools
that cover it, and what a pledge typed in ``?match_amount=`` would be matched
(before paying; no JavaScript). Amounts in minor units."""
from __future__ import annotations

from flask import current_app, request
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.money import MoneyError, parse_amount
from marketplace.pools import queries
from marketplace.pools import service as pools
from marketplace.pools.models import MatchState, PoolMatch

TEMPLATE = "pools/_item_section.html"


def probes(item: BacklogItem) -> dict:
    """SQL condition the item page asks in its one probe statement: whether the
    item's escrow holds any pool's match."""
    return {"rows": exists().where(PoolMatch.item_id == item.id, PoolMatch.state == MatchState.held)}


def section(item: BacklogItem, *, probed: dict | None = None) -> dict:
    """``{"matched", "preview", "asked", "error"}``: ``matched`` (pool, currency,
    held) rows; ``preview`` the :class:`~marketplace.pools.service.MatchPreview`
    list for the amount asked (``asked``: a Money, or None). ``probed``: the
    answer to :func:`probes` when the page asked it (no query when none is held)."""
    matched = queries.item_matches(item.id) if probed is None or probed["rows"] else []
    asked, preview, error = None, [], None
    text = request.args.get("match_amount", "").strip()
    if text:
        currencies = tuple(current_app.config["ALLOWED_CURRENCIES"])
        try:
            asked = parse_amount(text[:40], request.args.get("match_currency", currencies[0]), str(get_locale()),
                                 currencies)
        except MoneyError as exc:
            error = str(exc)
        else:
            funder_id = current_user.id if current_user.is_authenticated else None
            preview = pools.preview(item, funder_id, asked)
    return {"matched": matched, "preview": preview, "asked": asked, "error": error,
            "currencies": current_app.config["ALLOWED_CURRENCIES"], "text": text}
