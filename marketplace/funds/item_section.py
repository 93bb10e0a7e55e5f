"""The project fund's part of the item page (template ``funds/_item_section.html``):
the allotments the project's maintainers made to the item (amount, reason,
where the money is), and the way to the project's fund page."""
from __future__ import annotations

from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.funds import queries
from marketplace.funds.models import Allotment

TEMPLATE = "funds/_item_section.html"


def probes(item: BacklogItem) -> dict:
    """SQL conditions the item page asks in its one probe statement: whether
    any allotment went to the item (else the section reads none)."""
    return {"rows": exists().where(Allotment.item_id == item.id)}


def section(item: BacklogItem, *, probed: dict | None = None) -> dict:
    """``{"allotments", "project"}``: the item's allotments, oldest first, and its project (for the fund's link).
    ``probed``: the answers to :func:`probes` when the page asked them."""
    rows = probed is None or probed["rows"]
    return {"allotments": queries.item_allotments(item.id) if rows else [], "project": item.repository.project}
