"""The payouts' part of the item page (template ``payouts/_item_section.html``):
the item's payouts and what left its escrow."""
from __future__ import annotations

from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.payouts.models import Payout
from marketplace.payouts.queries import item_payouts, paid_out

TEMPLATE = "payouts/_item_section.html"


def probes(item: BacklogItem) -> dict:
    """SQL condition the item page asks in its one probe statement: whether the item has any payout."""
    return {"rows": exists().where(Payout.item_id == item.id)}


def section(item: BacklogItem, *, probed: dict | None = None) -> dict:
    """``{"rows", "paid_out"}``: the item's latest payouts (newest first) and
    (currency, minor units) paid out of its escrow (nothing read when
    ``probed``, the answer to :func:`probes`, says it has no payout)."""
    if probed is not None and not probed["rows"]:
        return {"rows": [], "paid_out": []}
    return {"rows": item_payouts(item.id), "paid_out": paid_out(item.id)}
