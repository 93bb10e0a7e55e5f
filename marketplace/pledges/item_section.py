"""The pledges' part of the item page (template ``pledges/_item_section.html``):
the fee, the pledge form or why the item takes none, the funders, and how many
pledges wait for their money. Amounts in minor units."""
from __future__ import annotations

from flask import current_app
from flask_login import current_user
from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.money import fee_of
from marketplace.pledges.forms import PledgeForm, pledge_form
from marketplace.pledges.models import Pledge
from marketplace.pledges.service import awaiting_payment, pledging_closed
from marketplace.pledges.transparency import item_pledges
from marketplace.projects.queries import has_maintainer, maintainer_exists

TEMPLATE = "pledges/_item_section.html"
FUNDER_STATES = ("held", "partially_refunded", "released", "disputed")  # money arrived, not (all) refunded
FUNDERS_SHOWN = 50
FEE_EXAMPLE = 5000  # minor units: 50.00 in most currencies


def probes(item: BacklogItem) -> dict:
    """SQL conditions the item page asks in its one probe statement: whether the
    item has any pledge (else the section reads none) and a maintainer."""
    return {"rows": exists().where(Pledge.item_id == item.id),
            "maintained": maintainer_exists(item.repository.project_id)}


def section(item: BacklogItem, *, form: PledgeForm | None = None, error: str | None = None,
            probed: dict | None = None) -> dict:
    """``{"fee", "form", "error", "closed", "awaiting_payment", "unmaintained", "funders"}`` for ``item``.

    ``form`` and ``error``: the pledge form as typed and what was wrong with
    it, when the pledge view shows the page again; the form is None for
    anonymous visitors. ``fee``: the project's rate in percent, with a worked
    example in the first allowed currency. ``probed``: the answers to
    :func:`probes` when the page asked them (no query for what they rule out)."""
    rows = probed is None or probed["rows"]
    rate = item.repository.project.fee_rate(current_app.config["DEFAULT_FEE_RATE_BPS"])
    return {
        "fee": {"rate_percent": rate / 100, "currency": current_app.config["ALLOWED_CURRENCIES"][0],
                "example": FEE_EXAMPLE, "example_fee": fee_of(FEE_EXAMPLE, rate)},
        "form": (form or pledge_form()) if current_user.is_authenticated else None,
        "error": error,
        "closed": pledging_closed(item),
        "awaiting_payment": awaiting_payment(item.id) if rows else 0,
        # Nobody could approve a claim or a payout: a pledge needs the funder's explicit acknowledgement.
        "unmaintained": not (probed["maintained"] if probed is not None
                             else has_maintainer(item.repository.project_id)),
        "funders": [p for p in item_pledges(item.id) if p["state"] in FUNDER_STATES][:FUNDERS_SHOWN]
        if rows else [],
    }
