"""Pledges: money a funder commits to an item, in integer minor units of one currency.

States only move forward; each transition is one conditional UPDATE on the
current state, so two racing writers cannot both move the same pledge.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class PledgeState(str, enum.Enum):
    """Where a pledge's money is."""

    pending = "pending"  # checkout created, or bank transfer awaited
    processing = "processing"  # an asynchronous payment method has not settled
    held = "held"  # received, in the item's escrow
    partially_refunded = "partially_refunded"  # part sent back, the rest held
    refunded = "refunded"  # all sent back
    released = "released"  # paid out (payouts issue)
    failed = "failed"  # the payment never settled
    cancelled = "cancelled"  # never paid
    disputed = "disputed"  # a chargeback is open


# Allowed predecessors of each state (for :func:`marketplace.pledges.service.transition`).
# One move goes back and is not listed here: a refund the provider reports
# failed gives its money back to escrow (refunded -> held or partially
# refunded); :func:`marketplace.pledges.service.undo_failed_refund` makes it,
# once per refund id, under the pledge's row lock.
ALLOWED_FROM: dict[PledgeState, frozenset[PledgeState]] = {
    PledgeState.processing: frozenset({PledgeState.pending}),
    # A dispute the commons wins returns the pledge to held: its money never left escrow.
    PledgeState.held: frozenset({PledgeState.pending, PledgeState.processing, PledgeState.disputed}),
    PledgeState.partially_refunded: frozenset({PledgeState.held, PledgeState.partially_refunded,
                                               PledgeState.disputed}),
    PledgeState.refunded: frozenset({PledgeState.held, PledgeState.partially_refunded, PledgeState.disputed}),
    PledgeState.released: frozenset({PledgeState.held, PledgeState.partially_refunded}),
    PledgeState.failed: frozenset({PledgeState.pending, PledgeState.processing}),
    PledgeState.cancelled: frozenset({PledgeState.pending}),
    PledgeState.disputed: frozenset({PledgeState.held, PledgeState.partially_refunded}),
}


class Rail(str, enum.Enum):
    """How the money comes (and goes back)."""

    card = "card"  # Stripe Checkout
    bank_transfer = "bank_transfer"  # offline, confirmed by the fiscal host


class Pledge(db.Model):
    """``amount_minor`` of ``currency`` pledged by ``funder`` to ``item`` until ``expires_at`` (UTC)."""

    __tablename__ = "pledge"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refund_within_amount"),
        Index("ix_pledge_state_expires", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"), index=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # what the commons received (or awaits)
    # What the funder announced, when a bank transfer brought another amount (the admin confirmed it).
    pledged_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    rail: Mapped[Rail] = mapped_column(db.Enum(Rail, native_enum=False, length=20))
    state: Mapped[PledgeState] = mapped_column(
        db.Enum(PledgeState, native_enum=False, length=30), default=PledgeState.pending)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    show_name: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime]
    # The provider's objects (Stripe Checkout Session, PaymentIntent) or the transfer reference.
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    transfer_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    held_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    item: Mapped["BacklogItem"] = relationship()  # noqa: F821
    funder: Mapped["User"] = relationship()  # noqa: F821

    @property
    def held_minor(self) -> int:
        """What is still in escrow (0 unless held or partially refunded)."""
        if self.state in (PledgeState.held, PledgeState.partially_refunded, PledgeState.disputed):
            return self.amount_minor - self.refunded_minor
        return 0


class RefundFailure(db.Model):
    """A refund that Stripe reported failed after it was made (``refund.failed``,
    or ``charge.refund.updated`` with status ``failed``), recorded once per
    refund id. ``amount_minor`` is what came back: to escrow, or to the
    commons' funds (owed to the funder) for a pledge paid out meanwhile (0
    when the failure was known before the refund itself was applied: it
    never will be). Until an admin refunds the pledge again, the pledge is flagged and no
    automatic or self-service refund is tried on the same card."""

    __tablename__ = "pledge_refund_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledge.id", ondelete="RESTRICT"), index=True)
    refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(100))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]  # a later refund of the pledge went through
