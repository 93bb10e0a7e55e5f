"""The pools' part of the item page (template ``pools/_item_section.html``):
"matched by POOL" for the matches the item's escrow holds, the live pools
that cover it, and what a pledge typed in ``?match_amount=`` would be matched
(before paying; no JavaScript). Amounts in minor units."""
from __future__ import annotations

from flask import current_app, request
from flask_babel import get_locale
from flask_login import current_user

from marketplace.backlog.models import BacklogItem
from marketplace.money import MoneyError, parse_amount
from marketplace.pools import queries
from marketplace.pools import service as pools

TEMPLATE = "pools/_item_section.html"


def section(item: BacklogItem) -> dict:
    """``{"matched", "preview", "asked", "error"}``: ``matched`` (pool, currency,
    held) rows; ``preview`` the :class:`~marketplace.pools.service.MatchPreview`
    list for the amount asked (``asked``: a Money, or None)."""
    matched = queries.item_matches(item.id)
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
