"""Reads of one funder's pledges for their "My pledges" page. Nothing here writes."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.extensions import db
from marketplace.payouts.models import Payout, PayoutPledge
from marketplace.pledges.models import Pledge

MY_PLEDGES_LIMIT = 500


def funder_pledges(funder_id: int, limit: int = MY_PLEDGES_LIMIT) -> list[dict]:
    """The pledges of ``funder_id``, newest first, each as ``{"pledge", "paid_for"}``.

    ``paid_for`` lists what the pledge's money was approved for: dicts
    ``{"payout", "amount_minor", "pull_request", "recipients"}`` (amounts in the
    pledge's minor units; ``pull_request`` None when the payout names none;
    ``recipients`` the display names of the payout's shares), oldest first.
    At most ``limit`` pledges (the export has them all)."""
    pledges = list(db.session.scalars(
        select(Pledge).where(Pledge.funder_id == funder_id)
        .options(selectinload(Pledge.item)).order_by(Pledge.id.desc()).limit(limit)))
    covered: dict[int, list[dict]] = {}
    if pledges:
        rows = db.session.execute(
            select(PayoutPledge.pledge_id, PayoutPledge.amount_minor, Payout)
            .join(Payout, Payout.id == PayoutPledge.payout_id)
            .where(PayoutPledge.pledge_id.in_([p.id for p in pledges]))
            .options(selectinload(Payout.shares), selectinload(Payout.pull_request))
            .order_by(Payout.id)).all()
        for pledge_id, amount, payout in rows:
            covered.setdefault(pledge_id, []).append({
                "payout": payout, "amount_minor": amount, "pull_request": payout.pull_request,
                "recipients": [share.recipient.display_name for share in payout.shares]})
    return [{"pledge": pledge, "paid_for": covered.get(pledge.id, [])} for pledge in pledges]
