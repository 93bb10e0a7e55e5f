"""Following an item, on the item page (template ``roles/_item_section.html``)."""
from __future__ import annotations

from flask_login import current_user

from marketplace.backlog.models import BacklogItem
from marketplace.roles.service import followers, is_following

TEMPLATE = "roles/_item_section.html"


def section(item: BacklogItem) -> dict:
    """``{"following", "followers"}``: whether the signed-in person follows
    ``item`` (None for a visitor) and how many people follow it."""
    return {"following": is_following(item.id, current_user.id) if current_user.is_authenticated else None,
            "followers": len(followers(item.id))}
