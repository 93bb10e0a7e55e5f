"""Project funds: the fund of a member project in one currency, its
subscriptions, what each brought in (receipts), the allotments made from it to
items' escrow and their attribution to the subscribers, and what went back to
the subscribers when the project left the commons.

The money is in the ledger: one ``project_fund`` account per fund
(``project_fund:fund:<id>``), fed from ``subscriber_payments`` (negative: what
subscribers paid in), allotted to ``item_escrow``, and, when the project
leaves, returned to ``subscriber_returns`` or kept by the fiscal host
(``fund_kept``). Rows here say whose money it was; ``flask ledger check``
checks that both agree. Amounts are integers in minor units of the fund's
currency.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow

DEFAULT_ALLOTMENT_EXPIRY_DAYS = 183  # about six months


class FundState(str, enum.Enum):
    """Where a fund stands."""

    open = "open"  # takes subscriptions; its maintainers allot it
    closed = "closed"  # the project left the commons: what it holds goes back to its subscribers


class ProjectFund(db.Model):
    """The fund of ``project`` in ``currency`` (one per project and currency).

    ``allotment_expiry_days``: an allotment whose item is not solved and holds
    no active claim that many days after it was made goes back to the fund."""

    __tablename__ = "project_fund"
    __table_args__ = (
        UniqueConstraint("project_id", "currency", name="uq_project_fund_project_currency"),
        CheckConstraint("allotment_expiry_days > 0", name="expiry_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("member_project.id", ondelete="RESTRICT"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[FundState] = mapped_column(db.Enum(FundState, native_enum=False, length=20),
                                             default=FundState.open)
    allotment_expiry_days: Mapped[int] = mapped_column(default=DEFAULT_ALLOTMENT_EXPIRY_DAYS)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]

    project: Mapped["MemberProject"] = relationship()  # noqa: F821


class SubscriptionRail(str, enum.Enum):
    """How a subscription's money comes (and would go back)."""

    card = "card"  # Stripe Billing: a monthly invoice charged to the card
    bank_transfer = "bank_transfer"  # a standing order; each transfer recorded by the fiscal host


class SubscriptionState(str, enum.Enum):
    """Where a subscription stands."""

    pending = "pending"  # Checkout opened / the first transfer awaited
    active = "active"  # billed (or transferred) every month
    paused = "paused"  # no invoice while paused; resumed by the subscriber
    cancelled = "cancelled"  # by the subscriber: no more invoices
    ended = "ended"  # Stripe ended it (customer.subscription.deleted), or the fund closed


SUBSCRIPTION_ALLOWED_FROM: dict[SubscriptionState, frozenset[SubscriptionState]] = {
    SubscriptionState.active: frozenset({SubscriptionState.pending, SubscriptionState.paused}),
    SubscriptionState.paused: frozenset({SubscriptionState.active}),
    SubscriptionState.cancelled: frozenset({SubscriptionState.pending, SubscriptionState.active,
                                            SubscriptionState.paused}),
    SubscriptionState.ended: frozenset({SubscriptionState.pending, SubscriptionState.active,
                                        SubscriptionState.paused, SubscriptionState.cancelled}),
}
LIVE_SUBSCRIPTION_STATES = (SubscriptionState.pending, SubscriptionState.active, SubscriptionState.paused)


class FundSubscription(db.Model):
    """``subscriber`` (a person, maybe for ``organisation``: a funder
    organisation they are an accepted member of) gives ``amount_minor`` a month
    to ``fund``. ``show_name``: the fund page names them — the organisation when
    subscribed for one — else "anonymous".

    Card: ``checkout_session_id`` is the Checkout (subscription mode) that
    starts it, ``stripe_subscription_id`` / ``stripe_customer_id`` Stripe's
    objects once known (from the events, in any order). Bank transfer:
    ``transfer_reference`` is what the subscriber writes on each transfer."""

    __tablename__ = "fund_subscription"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("project_fund.id", ondelete="RESTRICT"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    rail: Mapped[SubscriptionRail] = mapped_column(db.Enum(SubscriptionRail, native_enum=False, length=20))
    state: Mapped[SubscriptionState] = mapped_column(db.Enum(SubscriptionState, native_enum=False, length=20),
                                                     default=SubscriptionState.pending)
    show_name: Mapped[bool] = mapped_column(default=False)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    transfer_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    last_failed_at: Mapped[datetime | None]  # the latest invoice that could not be charged
    last_failed_invoice_id: Mapped[str | None] = mapped_column(String(255))  # its id: the subscriber is told once

    fund: Mapped[ProjectFund] = relationship()
    subscriber: Mapped["User"] = relationship()  # noqa: F821
    organisation: Mapped["Organisation | None"] = relationship()  # noqa: F821

    @property
    def payer_name(self) -> str:
        """Who gives the money: the organisation's name when subscribed for one, else the person's."""
        return self.organisation.name if self.organisation is not None else self.subscriber.display_name


class FundReceipt(db.Model):
    """Money that reached the fund for one subscription: a paid invoice
    (``external_id`` its Stripe id ``in_…``) or a transfer recorded by the
    fiscal host (``transfer:<subscription>:<reference>``). Once per id."""

    __tablename__ = "fund_receipt"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),
                      Index("ix_fund_receipt_fund_received", "fund_id", "received_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("project_fund.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fund_subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))  # a card invoice's payment
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # Refunded at Stripe: a leaving project's return, or taken back by Stripe (a refund, a lost chargeback).
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    subscription: Mapped[FundSubscription] = relationship()


class AllotmentState(str, enum.Enum):
    """Where an allotment's money is."""

    held = "held"  # in the item's escrow, a bounty like a held pledge
    released = "released"  # paid out with the item's payout
    returned = "returned"  # back in the fund (closed without the work, deleted, expired)


class Allotment(db.Model):
    """``amount_minor`` moved from ``fund`` to ``item``'s escrow by a
    maintainer, with a short public ``reason``. ``request_key`` (the form's
    one-time token) makes a double submission one allotment."""

    __tablename__ = "fund_allotment"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),
                      Index("ix_fund_allotment_item_state", "item_id", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("project_fund.id", ondelete="RESTRICT"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"))
    maintainer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(300))
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[AllotmentState] = mapped_column(db.Enum(AllotmentState, native_enum=False, length=20),
                                                  default=AllotmentState.held)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payout.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
    return_reason: Mapped[str | None] = mapped_column(String(200))

    fund: Mapped[ProjectFund] = relationship()
    item: Mapped["BacklogItem"] = relationship()  # noqa: F821
    maintainer: Mapped["User"] = relationship()  # noqa: F821
    attributions: Mapped[list["AllotmentAttribution"]] = relationship(
        back_populates="allotment", order_by="AllotmentAttribution.subscription_id")

    @property
    def held_minor(self) -> int:
        """What is still in the item's escrow (0 once released or returned)."""
        return self.amount_minor if self.state is AllotmentState.held else 0


class AllotmentAttribution(db.Model):
    """The part of ``allotment`` that was ``subscription``'s money: shares in
    proportion to each subscription's part of the fund's balance when it was
    allotted, by largest remainder (they add up to the allotment exactly)."""

    __tablename__ = "fund_allotment_attribution"
    __table_args__ = (UniqueConstraint("allotment_id", "subscription_id", name="uq_fund_attribution"),
                      CheckConstraint("amount_minor > 0", name="amount_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    allotment_id: Mapped[int] = mapped_column(ForeignKey("fund_allotment.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fund_subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    allotment: Mapped[Allotment] = relationship(back_populates="attributions")
    subscription: Mapped[FundSubscription] = relationship()


class FundReturnState(str, enum.Enum):
    """Where a subscriber's return (the project left) stands."""

    due = "due"  # owed: a card refund not made yet, or a transfer the fiscal host has not recorded
    returned = "returned"  # sent back (booked in the ledger)
    # Its card refunds all failed after it was booked: the booking was undone and a new
    # return (bank transfer, due) owes the amount again. A partly failed return stays
    # ``returned`` with its amount lowered to what went back.
    failed = "failed"


class FundReturn(db.Model):
    """What ``subscription`` gets back of a closed fund: pro rata of what it
    paid in the last 12 months (``number``: the fund's n-th return pass, for
    money that reached a closed fund later). Card: refunded at Stripe on its
    invoices' payments; bank transfer: recorded by the fiscal host. A card
    refund that fails afterwards (:func:`marketplace.funds.service.return_refund_failed`)
    becomes a new bank-transfer return, due, whose ``reference`` is the failed
    refund's id until the fiscal host records the transfer back."""

    __tablename__ = "fund_return"
    __table_args__ = (UniqueConstraint("subscription_id", "number", name="uq_fund_return_pass"),
                      CheckConstraint("amount_minor > 0", name="amount_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("project_fund.id", ondelete="RESTRICT"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fund_subscription.id", ondelete="RESTRICT"))
    number: Mapped[int] = mapped_column()
    rail: Mapped[SubscriptionRail] = mapped_column(db.Enum(SubscriptionRail, native_enum=False, length=20))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[FundReturnState] = mapped_column(db.Enum(FundReturnState, native_enum=False, length=20),
                                                   default=FundReturnState.due)
    reference: Mapped[str | None] = mapped_column(String(300))  # the refund ids, or the transfer's reference
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    returned_at: Mapped[datetime | None]

    subscription: Mapped[FundSubscription] = relationship()
