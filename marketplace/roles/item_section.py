"""Following an item, on the item page (template ``roles/_item_section.html``)."""
from __future__ import annotations

from flask_login import current_user
from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.roles.models import ItemFollow
from marketplace.roles.service import followers, is_following

TEMPLATE = "roles/_item_section.html"


def probes(item: BacklogItem) -> dict:
    """``{"followed": SQL boolean}``: whether anyone follows ``item`` (for an item
    page that asks every section's probes in one statement)."""
    return {"followed": exists().where(ItemFollow.item_id == item.id)}


def section(item: BacklogItem, *, probed: dict | None = None) -> dict:
    """``{"following", "followers"}``: whether the signed-in person follows
    ``item`` (None for a visitor) and how many people follow it. With
    ``probed`` saying nobody follows it, no query is made."""
    signed_in = current_user.is_authenticated
    if probed is not None and not probed.get("followed"):
        return {"following": False if signed_in else None, "followers": 0}
    return {"following": is_following(item.id, current_user.id) if signed_in else None,
            "followers": len(followers(item.id))}
