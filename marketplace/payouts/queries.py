"""Reads of payouts that pages and the API share: an item's payouts (for its page
and as the public sees them), what left an item's escrow, a person's earnings
and totals, a claimant's payouts, a project's payouts. Amounts are integers in
minor units; nothing here writes."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.payouts.models import (
    OPEN_PAYOUT_STATES,
    Payout,
    PayoutShare,
    PayoutState,
    ShareState,
)

LIST_LIMIT = 200  # rows on a list page: enough for a project or a person, light on a slow connection


def paid_out(item_id: int) -> list[tuple[str, int]]:
    """(currency, minor units) that executed payouts took out of the item's escrow, by currency."""
    rows = db.session.execute(select(Payout.currency, func.sum(Payout.gross_minor)).where(
        Payout.item_id == item_id, Payout.executed_at.is_not(None)).group_by(Payout.currency)
        .order_by(Payout.currency)).all()
    return [(currency, int(total)) for currency, total in rows]


def item_payouts(item_id: int) -> list[Payout]:
    """The payout history of an item (for its page), newest first, at most 20, shares loaded."""
    return list(db.session.scalars(
        select(Payout).where(Payout.item_id == item_id)
        .options(selectinload(Payout.shares).selectinload(PayoutShare.recipient))
        .order_by(Payout.id.desc()).limit(20)))


def public_item_payouts(item_id: int) -> list[dict]:
    """Payouts of an item, oldest first, as the public sees them: state, gross,
    fee and each recipient's share (minor units); names only once a maintainer
    approved the split (none while proposed or awaiting certification)."""
    rows = db.session.scalars(select(Payout).where(Payout.item_id == item_id).order_by(Payout.id)).all()
    return [
        {
            "payout": payout.id,
            "state": payout.state.value,
            "currency": payout.currency,
            "gross_minor": payout.gross_minor,
            "fee_minor": payout.fee_minor,
            "pull_request": payout.pull_request.html_url if payout.pull_request else None,
            "shares": [{"recipient": share.recipient.display_name, "amount_minor": share.amount_minor,
                        "state": share.state.value} for share in payout.shares]
            if payout.state not in (PayoutState.proposed, PayoutState.awaiting_certification) else [],
            "executed_at": payout.executed_at.isoformat() + "Z" if payout.executed_at else None,
        }
        for payout in rows
    ]


def recent_payouts(limit: int = 50) -> list[Payout]:
    """The latest executed payouts (money that left escrow), newest first. The
    amounts are public whatever became of the item; its title only while the
    item is (``hidden`` is the one "not public" flag: curated away, deleted on
    the forge, confidential, or of a private repository), which the
    transparency page checks."""
    return list(db.session.scalars(select(Payout).where(Payout.executed_at.is_not(None))
                                   .options(selectinload(Payout.item))  # one query, not one per row
                                   .order_by(Payout.executed_at.desc(), Payout.id.desc()).limit(limit)))


def payouts_of_project(project_id: int, limit: int = LIST_LIMIT) -> list[Payout]:
    """The payouts of a member project's items, open ones first, then newest first."""
    return list(db.session.scalars(
        select(Payout).join(BacklogItem, BacklogItem.id == Payout.item_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(Repository.project_id == project_id)
        .options(selectinload(Payout.item), selectinload(Payout.shares).selectinload(PayoutShare.recipient))
        .order_by(Payout.state.in_(OPEN_PAYOUT_STATES).desc(), Payout.id.desc()).limit(limit)))


def earnings(user_id: int, limit: int = LIST_LIMIT) -> list[PayoutShare]:
    """A person's payout shares (not of cancelled payouts), newest first."""
    return list(db.session.scalars(
        select(PayoutShare).join(Payout).where(PayoutShare.recipient_id == user_id,
                                               Payout.state != PayoutState.cancelled)
        .options(selectinload(PayoutShare.payout).selectinload(Payout.item))
        .order_by(Payout.id.desc()).limit(limit)))


def paid_totals(user_id: int) -> list[tuple[str, int]]:
    """(currency, minor units) paid to a person, by currency (currencies with nothing paid left out)."""
    rows = db.session.execute(
        select(Payout.currency, func.sum(PayoutShare.amount_minor)).join(Payout)
        .where(PayoutShare.recipient_id == user_id, PayoutShare.state == ShareState.paid)
        .group_by(Payout.currency).order_by(Payout.currency)).all()
    return [(currency, int(total)) for currency, total in rows if total]


def paid_to_on_item(user_id: int, item_id: int) -> list[tuple[str, int]]:
    """(currency, net minor units) of the person's paid shares of the item's payouts, by currency."""
    return [(currency, int(total)) for currency, total in db.session.execute(
        select(Payout.currency, func.sum(PayoutShare.amount_minor)).join(Payout, Payout.id == PayoutShare.payout_id)
        .where(Payout.item_id == item_id, PayoutShare.recipient_id == user_id,
               PayoutShare.state == ShareState.paid)
        .group_by(Payout.currency).order_by(Payout.currency))]


def payouts_naming(user_id: int, item_id: int) -> list[Payout]:
    """The item's payouts that name the person (as suggested recipient, or with a share), oldest first."""
    return list(db.session.scalars(select(Payout).where(
        Payout.item_id == item_id,
        (Payout.suggested_recipient_id == user_id)
        | Payout.id.in_(select(PayoutShare.payout_id).where(PayoutShare.recipient_id == user_id)))
        .order_by(Payout.id)))
