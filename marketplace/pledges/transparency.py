"""What the public may see of the money: per item, every pledge (the funder's name
or "anonymous"), its state, escrow and refunds; and totals per currency. (An
item's payouts as the public sees them: ``marketplace.payouts.queries``.)"""
from __future__ import annotations

from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.ledger.summary import balances_from_entries, figures
from marketplace.pledges.models import Pledge, PledgeState

# Pledges whose money never arrived (yet) are not public money: only counted (awaiting_payment).
NEVER_RECEIVED = (PledgeState.pending, PledgeState.processing, PledgeState.failed, PledgeState.cancelled)


def item_pledges(item_id: int) -> list[dict]:
    """Pledges of an item whose money arrived, oldest first, as the public sees
    them (amounts in minor units). Unpaid pledges are left out: starting a
    Checkout never makes an item look funded."""
    rows = db.session.execute(
        select(Pledge, User.display_name).join(User, User.id == Pledge.funder_id)
        .where(Pledge.item_id == item_id, Pledge.state.not_in(NEVER_RECEIVED)).order_by(Pledge.id)
    ).all()
    return [
        {
            "pledge": pledge.id,
            "funder": name if pledge.show_name else None,
            "state": pledge.state.value,
            "currency": pledge.currency,
            "amount_minor": pledge.amount_minor,
            "held_minor": pledge.held_minor,
            "refunded_minor": pledge.refunded_minor,
            "created_at": pledge.created_at.isoformat() + "Z",
        }
        for pledge, name in rows
    ]


def totals() -> dict[str, dict[str, int]]:
    """Per currency, summed from every ledger entry now (a whole-ledger pass,
    for reports and tools; public pages read the stored summary,
    :func:`marketplace.ledger.summary.read`): received, held in escrow,
    refunded, fees, paid out, owed to contributors (approved, not yet paid),
    lost to disputes, covered by the commons' own funds (losses after payout,
    less transfers reversed back), advanced against recipients' debts, and
    the matching pools' money: received from sponsors, held by the pools,
    returned to sponsors (what pools matched is in escrow, or paid out)."""
    return figures(balances_from_entries())
