"""The payouts' part of the item page (template ``payouts/_item_section.html``):
the item's payouts and what left its escrow."""
from __future__ import annotations

from marketplace.backlog.models import BacklogItem
from marketplace.payouts.queries import item_payouts, paid_out

TEMPLATE = "payouts/_item_section.html"


def section(item: BacklogItem) -> dict:
    """``{"rows", "paid_out"}``: the item's latest payouts (newest first) and
    (currency, minor units) paid out of its escrow."""
    return {"rows": item_payouts(item.id), "paid_out": paid_out(item.id)}
