"""What the public may see of the money: per item, every pledge (the funder's name
or "anonymous"), its state, escrow and refunds; and totals per currency. (An
item's payouts as the public sees them: ``marketplace.payouts.queries``.)"""
from __future__ import annotations

from sqlalchemy import func, select

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry
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
    """Per currency, from the ledger entries: received, held in escrow,
    refunded, fees, paid out, owed to contributors (approved, not yet paid),
    lost to disputes, covered by the commons' own funds (losses after payout,
    less transfers reversed back), advanced against recipients' debts, and
    the matching pools' money: received from sponsors, held by the pools,
    returned to sponsors (what pools matched is in escrow, or paid out)."""
    rows = db.session.execute(
        select(LedgerAccount.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .group_by(LedgerAccount.kind, LedgerEntry.currency)
    ).all()
    out: dict[str, dict[str, int]] = {}
    names = {AccountKind.funder_payments: "received", AccountKind.item_escrow: "held",
             AccountKind.refunds: "refunded", AccountKind.platform_fees: "fees",
             AccountKind.payouts_paid: "paid", AccountKind.contributor_payable: "owed",
             AccountKind.disputes: "lost", AccountKind.commons_funds: "commons",
             AccountKind.contributor_receivable: "advanced",
             AccountKind.stripe_fees: "lost",  # a dispute's fee is part of what the dispute cost
             # Matching pools: sponsors' money in, what the pools hold, what went back to sponsors.
             AccountKind.sponsor_payments: "pools_received", AccountKind.matching_pool: "pools_held",
             AccountKind.sponsor_returns: "pools_returned"}
    for kind, currency, total in rows:
        figures = out.setdefault(currency, dict.fromkeys(names.values(), 0))
        value = int(total or 0)
        # Sources are negative in the ledger; shown as positive amounts.
        negative = kind in (AccountKind.funder_payments, AccountKind.contributor_receivable,
                            AccountKind.sponsor_payments)
        figures[names[kind]] += -value if negative else value
    return dict(sorted(out.items()))
