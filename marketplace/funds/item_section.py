"""The project fund's part of the item page (template ``funds/_item_section.html``):
the allotments the project's maintainers made to the item (amount, reason,
where the money is), and the way to the project's fund page."""
from __future__ import annotations

from marketplace.backlog.models import BacklogItem
from marketplace.funds import queries

TEMPLATE = "funds/_item_section.html"


def section(item: BacklogItem) -> dict:
    """``{"allotments", "project"}``: the item's allotments, oldest first, and its project (for the fund's link)."""
    return {"allotments": queries.item_allotments(item.id), "project": item.repository.project}
