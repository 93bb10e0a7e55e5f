"""What the fund pages, the API and the statements read about project funds.
Figures are minor units of the fund's currency, from the ledger and the rows."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from marketplace.extensions import db
from marketplace.funds.models import (
    Allotment,
    AllotmentAttribution,
    AllotmentState,
    FundReceipt,
    FundReturn,
    FundReturnState,
    FundSubscription,
    ProjectFund,
    SubscriptionState,
)
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind
from marketplace.projects.models import MemberProject
from marketplace.timeutil import utcnow


def funds_of(project: MemberProject) -> list[ProjectFund]:
    """The project's funds, by currency."""
    return list(db.session.scalars(select(ProjectFund).where(ProjectFund.project_id == project.id)
                                   .order_by(ProjectFund.currency)))


def _sum(query) -> int:
    return int(db.session.scalar(query) or 0)


def figures(fund: ProjectFund, now: datetime | None = None) -> dict[str, int]:
    """``balance`` (held unallotted, from the ledger), ``received`` (all the
    subscribers paid in), ``received_30_days``, ``monthly`` (what the live
    subscriptions give a month), ``allotted`` (every allotment made),
    ``returned`` (allotments come back to the fund), ``in_escrow`` (allotted and
    held on items), ``paid_out`` (allotments paid out), ``to_subscribers``
    (returned to subscribers when the project left), ``kept`` (kept by the
    fiscal host then), ``taken_back`` (taken back by Stripe: invoices refunded
    at Stripe and chargebacks lost, the balance of the fund's
    ``subscriber_refunds`` account — what the fund paid of it and what the
    commons covered because the fund had allotted it already),
    ``subscribers`` (live subscriptions)."""
    now = now or utcnow()
    allotments = dict(db.session.execute(
        select(Allotment.state, func.sum(Allotment.amount_minor)).where(Allotment.fund_id == fund.id)
        .group_by(Allotment.state)).all())
    held, released, returned = (int(allotments.get(state, 0) or 0) for state in
                                (AllotmentState.held, AllotmentState.released, AllotmentState.returned))
    return {
        "balance": ledger.balance(ledger.account(AccountKind.project_fund, fund_id=fund.id), fund.currency),
        "received": _sum(select(func.sum(FundReceipt.amount_minor)).where(FundReceipt.fund_id == fund.id)),
        "received_30_days": _sum(select(func.sum(FundReceipt.amount_minor)).where(
            FundReceipt.fund_id == fund.id, FundReceipt.received_at >= now - timedelta(days=30))),
        "monthly": _sum(select(func.sum(FundSubscription.amount_minor)).where(
            FundSubscription.fund_id == fund.id, FundSubscription.state == SubscriptionState.active)),
        "allotted": held + released + returned, "returned": returned, "in_escrow": held, "paid_out": released,
        "to_subscribers": _sum(select(func.sum(FundReturn.amount_minor)).where(
            FundReturn.fund_id == fund.id, FundReturn.state == FundReturnState.returned)),
        "kept": ledger.balance(ledger.account(AccountKind.fund_kept, fund_id=fund.id), fund.currency),
        "taken_back": ledger.balance(ledger.account(AccountKind.subscriber_refunds, fund_id=fund.id), fund.currency),
        "subscribers": _sum(select(func.count(FundSubscription.id)).where(
            FundSubscription.fund_id == fund.id,
            FundSubscription.state.in_([SubscriptionState.active, SubscriptionState.paused]))),
    }


def subscribers(fund: ProjectFund) -> list[dict]:
    """Live subscriptions (active or paused), largest first: ``name`` (None when
    the subscriber chose not to be shown), ``amount_minor`` a month, ``state``, ``since``."""
    rows = db.session.scalars(select(FundSubscription).where(
        FundSubscription.fund_id == fund.id,
        FundSubscription.state.in_([SubscriptionState.active, SubscriptionState.paused]))
        .order_by(FundSubscription.amount_minor.desc(), FundSubscription.id))
    return [{"name": public_name(sub), "amount_minor": sub.amount_minor, "state": sub.state,
             "since": sub.started_at or sub.created_at} for sub in rows]


def public_name(sub: FundSubscription) -> str | None:
    """Who subscribed, when they chose to be shown — the organisation's name for a
    subscription made for one, else the person's display name — or None (anonymous)."""
    return sub.payer_name if sub.show_name else None


def allotments_of(fund: ProjectFund, limit: int = 500) -> list[Allotment]:
    """The fund's allotments, newest first."""
    return list(db.session.scalars(select(Allotment).where(Allotment.fund_id == fund.id)
                                   .order_by(Allotment.id.desc()).limit(limit)))


def item_allotments(item_id: int) -> list[Allotment]:
    """Every allotment to an item, oldest first."""
    return list(db.session.scalars(select(Allotment).where(Allotment.item_id == item_id).order_by(Allotment.id)))


def attribution_of(allotment: Allotment) -> list[dict]:
    """Whose money an allotment was: ``name`` (None: anonymous) and ``amount_minor`` per subscription."""
    return [{"name": public_name(a.subscription), "amount_minor": a.amount_minor, "subscription": a.subscription_id}
            for a in allotment.attributions]


def my_subscriptions(user_id: int) -> list[FundSubscription]:
    """A person's subscriptions, newest first."""
    return list(db.session.scalars(select(FundSubscription).where(FundSubscription.subscriber_id == user_id)
                                   .order_by(FundSubscription.id.desc())))


def organisation_subscriptions(organisation_id: int) -> list[FundSubscription]:
    """The subscriptions made for an organisation (by any of its members), newest first."""
    return list(db.session.scalars(select(FundSubscription).where(
        FundSubscription.organisation_id == organisation_id).order_by(FundSubscription.id.desc())))


def receipts_of(sub: FundSubscription) -> list[FundReceipt]:
    """What a subscription brought into its fund, newest first."""
    return list(db.session.scalars(select(FundReceipt).where(FundReceipt.subscription_id == sub.id)
                                   .order_by(FundReceipt.received_at.desc(), FundReceipt.id.desc())))


def attributions_of(sub: FundSubscription) -> list[AllotmentAttribution]:
    """What a subscription's money was allotted to (its part of each allotment), newest first."""
    return list(db.session.scalars(select(AllotmentAttribution).join(Allotment)
                                   .where(AllotmentAttribution.subscription_id == sub.id)
                                   .order_by(Allotment.id.desc())))


def returns_of(sub: FundSubscription) -> list[FundReturn]:
    """What goes (or went) back to a subscription from a closed fund."""
    return list(db.session.scalars(select(FundReturn).where(FundReturn.subscription_id == sub.id)
                                   .order_by(FundReturn.id)))


def bank_subscriptions(limit: int = 200) -> list[FundSubscription]:
    """Bank-transfer subscriptions still running (the fiscal host records their transfers), oldest first."""
    return list(db.session.scalars(select(FundSubscription).where(
        FundSubscription.rail == "bank_transfer",
        FundSubscription.state.in_([SubscriptionState.pending, SubscriptionState.active, SubscriptionState.paused]))
        .order_by(FundSubscription.id).limit(limit)))


def due_returns(limit: int = 200) -> list[FundReturn]:
    """Returns to subscribers not made yet (a closed fund), oldest first."""
    return list(db.session.scalars(select(FundReturn).where(FundReturn.state == FundReturnState.due)
                                   .order_by(FundReturn.id).limit(limit)))
