"""The forge part of the item page (template ``presence/_item_section.html``):
the item's badge, the Markdown and HTML to copy into a README or an issue, and
the link to the item's living comment on its issue when there is one."""
from __future__ import annotations

from markupsafe import escape
from sqlalchemy import exists, select

from marketplace.backlog.models import BacklogItem
from marketplace.extensions import db
from marketplace.notifications.links import url_for_public
from marketplace.presence.models import ItemPresence
from marketplace.presence.service import comment_url

TEMPLATE = "presence/_item_section.html"


def snippets(badge: str, link: str, alt: str) -> dict:
    """``{"badge", "link", "markdown", "html"}``: a badge linking to ``link``, to copy."""
    return {"badge": badge, "link": link, "markdown": f"[![{alt}]({badge})]({link})",
            "html": f'<a href="{escape(link)}"><img src="{escape(badge)}" alt="{escape(alt)}"></a>'}


def _has_comment(item: BacklogItem):
    return exists().where(ItemPresence.item_id == item.id, ItemPresence.comment_id.is_not(None),
                          ItemPresence.abandoned_at.is_(None))


def probes(item: BacklogItem) -> dict:
    """``{"comment": SQL boolean}``: whether the item has a living comment on its issue."""
    return {"comment": _has_comment(item)}


def section(item: BacklogItem, *, probed: dict | None = None) -> dict:
    """The badge snippets of ``item`` (absolute links on ``PUBLIC_URL``),
    ``comment_url``: the web address of its living comment (GitHub's
    ``html_url``, a GitLab note's issue ``web_url#note_<id>``), and
    ``comment_id`` (the forge's id of it), both None when there is none.
    With ``probed`` saying there is none, no query is made."""
    found = snippets(url_for_public("presence.item_badge", item_id=item.id),
                     url_for_public("backlog.item", item_id=item.id), "Bounty on Backlog Commons")
    found["comment_url"] = found["comment_id"] = None
    if probed is not None and not probed.get("comment"):
        return found
    row = db.session.execute(select(ItemPresence.comment_id, ItemPresence.comment_url).where(
        ItemPresence.item_id == item.id, ItemPresence.comment_id.is_not(None),
        ItemPresence.abandoned_at.is_(None))).first()
    if row is not None:
        # A comment posted before its address was stored (GitLab's answer has none): built from the issue's.
        found["comment_url"] = comment_url(item, row.comment_id, row.comment_url)
        found["comment_id"] = row.comment_id
    return found
