"""Payouts, their shares (one per recipient), the pledges they cover, and
recipients' payout accounts.

A payout is the money of one item in one currency. Its amounts are a
proposal until a maintainer approves; approval fixes them. Execution moves
the money out of escrow in one ledger transaction (fee to the commons, each
share to what its recipient is owed); each share is then paid through its
rail, exactly once.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class PayoutState(str, enum.Enum):
    """Where a payout stands."""

    awaiting_certification = "awaiting_certification"  # a recipient must be certified before approval
    proposed = "proposed"  # the change merged; a maintainer approves (and may split)
    approved = "approved"  # amounts fixed; executes once the dispute window has passed
    held = "held"  # a pledge it covers is disputed (or no longer holds its money)
    executing = "executing"  # money out of escrow, owed to recipients, shares being paid
    paid = "paid"  # every share paid
    failed = "failed"  # a rail error on a share; retried
    cancelled = "cancelled"  # will not be paid (the money stays in escrow)
    # Executed by the manual rail, but the bank or mobile-money transfer came
    # back: an admin posted the exact inverse, the money is in escrow again.
    returned = "returned"


OPEN_PAYOUT_STATES = (PayoutState.awaiting_certification, PayoutState.proposed, PayoutState.approved,
                      PayoutState.held)
APPROVABLE_STATES = (PayoutState.proposed, PayoutState.held)

PAYOUT_ALLOWED_FROM: dict[PayoutState, frozenset[PayoutState]] = {
    PayoutState.proposed: frozenset({PayoutState.awaiting_certification, PayoutState.held}),
    PayoutState.awaiting_certification: frozenset({PayoutState.proposed}),
    PayoutState.approved: frozenset({PayoutState.proposed, PayoutState.held}),
    PayoutState.held: frozenset({PayoutState.approved}),
    PayoutState.executing: frozenset({PayoutState.approved, PayoutState.failed}),
    PayoutState.failed: frozenset({PayoutState.executing}),
    PayoutState.paid: frozenset({PayoutState.executing, PayoutState.failed}),
    PayoutState.cancelled: frozenset({PayoutState.awaiting_certification, PayoutState.proposed,
                                      PayoutState.approved, PayoutState.held}),
    PayoutState.returned: frozenset({PayoutState.executing, PayoutState.paid}),
}


class ShareState(str, enum.Enum):
    """Where one recipient's share stands once the payout executes."""

    pending = "pending"  # fixed, not yet executed
    awaiting_certification = "awaiting_certification"  # owed; paid once the recipient is certified
    awaiting_account = "awaiting_account"  # owed; paid once the recipient's Stripe account can receive
    awaiting_manual_payout = "awaiting_manual_payout"  # owed; the fiscal host records the transfer
    transferring = "transferring"  # a Stripe transfer is being made (retried with the same key)
    failed = "failed"  # Stripe refused; retried later with the same key
    paid = "paid"
    reversed = "reversed"  # the transfer was reversed outside the commons: an admin decides
    returned = "returned"  # paid by hand, but the transfer came back (its payout is returned)


class PayoutRail(str, enum.Enum):
    """How a recipient is paid."""

    stripe = "stripe"  # Stripe Connect Express transfer
    manual = "manual"  # bank or mobile-money transfer recorded by the fiscal host


class Payout(db.Model):
    """The money of ``item`` in ``currency`` for the work that completed it.

    ``open_key`` is "item_id:currency" while the payout is open (not yet
    executing) and NULL after: its unique constraint keeps one open payout per
    item and currency, whichever of two racing syncs proposes it first.
    ``gross_minor`` = ``fee_minor`` + the shares, exactly (minor units of
    ``currency``).
    """

    __tablename__ = "payout"
    __table_args__ = (
        CheckConstraint("gross_minor >= 0 AND fee_minor >= 0 AND fee_minor <= gross_minor", name="amounts_valid"),
        Index("ix_payout_state_execute_after", "state", "execute_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[PayoutState] = mapped_column(
        db.Enum(PayoutState, native_enum=False, length=30), default=PayoutState.proposed)
    open_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    pull_request_id: Mapped[int | None] = mapped_column(ForeignKey("pull_request.id", ondelete="SET NULL"))
    # The suggested recipient (the approved claimant who authored the change); None: the maintainer attributes.
    suggested_recipient_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(40))  # merged | closed_by_commit | closed_completed
    gross_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_rate_bps: Mapped[int] = mapped_column(default=0)
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    execute_after: Mapped[datetime | None]  # end of the dispute window (UTC)
    executed_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    # The item was reopened after this payout executed: a maintainer should look.
    flagged_at: Mapped[datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(Text)
    # Of ``fee_minor``, what went back to funders on refunds after payout (minor units).
    fee_refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    returned_at: Mapped[datetime | None]  # the manual transfer came back; the payout was undone

    item: Mapped["BacklogItem"] = relationship()  # noqa: F821
    pull_request: Mapped["PullRequest | None"] = relationship()  # noqa: F821
    suggested_recipient: Mapped["User | None"] = relationship(foreign_keys=[suggested_recipient_id])  # noqa: F821
    shares: Mapped[list["PayoutShare"]] = relationship(
        back_populates="payout", cascade="all, delete-orphan", order_by="PayoutShare.position")
    covered: Mapped[list["PayoutPledge"]] = relationship(
        back_populates="payout", cascade="all, delete-orphan", order_by="PayoutPledge.pledge_id")


class PayoutShare(db.Model):
    """One recipient's part of a payout: ``weight`` out of the sum of the
    payout's weights, ``amount_minor`` fixed at approval (largest remainder)."""

    __tablename__ = "payout_share"
    __table_args__ = (
        UniqueConstraint("payout_id", "recipient_id", name="uq_payout_share_recipient"),
        CheckConstraint("weight > 0", name="weight_positive"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        Index("ix_payout_share_state", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(ForeignKey("payout.id", ondelete="CASCADE"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    weight: Mapped[int]
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[ShareState] = mapped_column(
        db.Enum(ShareState, native_enum=False, length=30), default=ShareState.pending)
    rail: Mapped[PayoutRail | None] = mapped_column(db.Enum(PayoutRail, native_enum=False, length=20))
    stripe_transfer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    manual_reference: Mapped[str | None] = mapped_column(String(200))
    manual_paid_on: Mapped[date | None]
    attempts: Mapped[int] = mapped_column(default=0)
    # Stripe refusals so far. Stripe replays a refused request's answer for its
    # key, so a new attempt after a refusal (no transfer was made) needs a new key.
    refusals: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # An attempt to make this share's Stripe transfer began (committed on its
    # own before Stripe is called) and its outcome is not recorded yet: the
    # next attempt first looks for the transfer in the payout's transfer group,
    # since Stripe forgets an idempotency key after 24 hours.
    transfer_in_flight_at: Mapped[datetime | None]
    told_at: Mapped[datetime | None]  # the recipient was told how to receive (once)
    # Refunded to funders after payout against this share (reversed, or owed back by the recipient).
    refunded_after_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime | None]

    payout: Mapped[Payout] = relationship(back_populates="shares")
    recipient: Mapped["User"] = relationship()  # noqa: F821

    @property
    def transfer_idempotency_key(self) -> str:
        """The Stripe idempotency key of this share's transfer, made from the payout id.

        The same on every retry after a timeout or an outage (so Stripe returns
        the transfer it may already have made); a new one only after Stripe
        refused, when it certainly made none.
        """
        return f"payout-{self.payout_id}-recipient-{self.recipient_id}-transfer-{self.refusals}"


class PayoutPledge(db.Model):
    """The money of one pledge that a payout covers (fixed at approval)."""

    __tablename__ = "payout_pledge"

    payout_id: Mapped[int] = mapped_column(ForeignKey("payout.id", ondelete="CASCADE"), primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledge.id", ondelete="RESTRICT"), primary_key=True,
                                           index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    payout: Mapped[Payout] = relationship(back_populates="covered")
    pledge: Mapped["Pledge"] = relationship()  # noqa: F821


class PayoutAccount(db.Model):
    """How a recipient receives money: a Stripe Connect Express account, or
    the manual rail (bank or mobile money, paid by the fiscal host).

    ``manual_details`` are the recipient's own instructions, shown to admins only.
    """

    __tablename__ = "payout_account"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    rail: Mapped[PayoutRail] = mapped_column(db.Enum(PayoutRail, native_enum=False, length=20))
    stripe_account_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    transfers_active: Mapped[bool] = mapped_column(default=False)
    requirements: Mapped[str | None] = mapped_column(Text)  # what Stripe says is missing, comma-separated
    manual_details: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped["User"] = relationship()  # noqa: F821
