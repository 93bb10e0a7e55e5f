"""The forge part of the item page (template ``presence/_item_section.html``):
the item's badge and the Markdown and HTML to copy into a README or an issue."""
from __future__ import annotations

from markupsafe import escape

from marketplace.backlog.models import BacklogItem
from marketplace.notifications.links import url_for_public

TEMPLATE = "presence/_item_section.html"


def snippets(badge: str, link: str, alt: str) -> dict:
    """``{"badge", "link", "markdown", "html"}``: a badge linking to ``link``, to copy."""
    return {"badge": badge, "link": link, "markdown": f"[![{alt}]({badge})]({link})",
            "html": f'<a href="{escape(link)}"><img src="{escape(badge)}" alt="{escape(alt)}"></a>'}


def section(item: BacklogItem) -> dict:
    """The badge snippets of ``item`` (absolute links on ``PUBLIC_URL``)."""
    return snippets(url_for_public("presence.item_badge", item_id=item.id),
                    url_for_public("backlog.item", item_id=item.id), "Bounty on Backlog Commons")
