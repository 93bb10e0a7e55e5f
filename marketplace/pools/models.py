"""Matching pools: a sponsor's budget, held in its own ledger account
(``matching_pool:pool:<id>``), that multiplies other funders' pledges.

A ratio pool matches each eligible pledge when it becomes held (a
:class:`PoolMatch` linked to the pledge); a quadratic-funding round is
divided among items at its end (matches with no pledge). A match follows its
pledge: what the pledge gives back, the match gives back to the pool, never to
the funder. Amounts are integers in minor units of the pool's currency.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class PoolKind(str, enum.Enum):
    """How a pool gives its money."""

    ratio = "ratio"  # matches each eligible pledge at a ratio when it is held
    quadratic = "quadratic"  # a round: divided at its end by quadratic funding


class PoolState(str, enum.Enum):
    """Where a pool stands."""

    awaiting_budget = "awaiting_budget"  # created; the sponsor's money has not arrived
    funded = "funded"  # the budget is held; live while its window is open and it holds money
    ended = "ended"  # its window is over: no more matches; what it holds goes back to the sponsor
    # Cancelled by its sponsor: before its budget came, or funded but before any
    # match (then what it holds goes back to the sponsor, as for an ended pool).
    cancelled = "cancelled"


POOL_ALLOWED_FROM: dict[PoolState, frozenset[PoolState]] = {
    PoolState.funded: frozenset({PoolState.awaiting_budget}),
    PoolState.ended: frozenset({PoolState.funded}),
    PoolState.cancelled: frozenset({PoolState.awaiting_budget, PoolState.funded}),
}
# States in which what a pool holds is owed to its sponsor.
RETURNING_STATES = (PoolState.ended, PoolState.cancelled)


class PoolRail(str, enum.Enum):
    """How a pool's budget comes (and goes back): the pledges' rails."""

    card = "card"  # Stripe Checkout; returned by Stripe refunds of that payment
    bank_transfer = "bank_transfer"  # confirmed, and returned, by the fiscal host


class MatchingPool(db.Model):
    """A sponsor's budget of ``budget_minor`` (announced) / ``received_minor``
    (arrived) in ``currency``; ``returned_minor`` went back to the sponsor.

    Ratio pools match ``ratio_percent`` of each eligible pledge (50, 100, 200),
    within the caps (None: no cap) and the window [``starts_at``, ``ends_at``)
    (UTC). Eligibility: items of projects with a maintainer, and, when set,
    of the listed projects, SDGs and labels (an item qualifies by any one of
    each list given). Rounds cap each item at ``item_cap_bps`` of the pool
    (basis points; None: no cap).
    """

    __tablename__ = "matching_pool"
    __table_args__ = (
        CheckConstraint("budget_minor > 0", name="budget_positive"),
        CheckConstraint("received_minor >= 0 AND returned_minor >= 0", name="amounts_not_negative"),
        CheckConstraint("ratio_percent > 0", name="ratio_positive"),
        CheckConstraint("ends_at > starts_at", name="window_forward"),
        CheckConstraint("item_cap_bps IS NULL OR (item_cap_bps > 0 AND item_cap_bps <= 10000)",
                        name="item_cap_share"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[PoolKind] = mapped_column(db.Enum(PoolKind, native_enum=False, length=20), default=PoolKind.ratio)
    state: Mapped[PoolState] = mapped_column(db.Enum(PoolState, native_enum=False, length=20),
                                             default=PoolState.awaiting_budget)
    sponsor_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(3))
    budget_minor: Mapped[int] = mapped_column(BigInteger)
    received_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    returned_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    rail: Mapped[str] = mapped_column(String(20), default="bank_transfer")  # PoolRail: card | bank_transfer
    transfer_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Card budgets: the open (or paid) Stripe Checkout Session, its PaymentIntent,
    # and the number of Checkouts that expired unpaid (a new one gets a new idempotency key).
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    ratio_percent: Mapped[int] = mapped_column(default=100)
    cap_per_pledge_minor: Mapped[int | None] = mapped_column(BigInteger)
    cap_per_funder_minor: Mapped[int | None] = mapped_column(BigInteger)
    cap_per_item_minor: Mapped[int | None] = mapped_column(BigInteger)
    min_pledge_minor: Mapped[int | None] = mapped_column(BigInteger)
    item_cap_bps: Mapped[int | None] = mapped_column()
    eligible_project_ids: Mapped[list] = mapped_column(JSON, default=list)
    eligible_sdgs: Mapped[list] = mapped_column(JSON, default=list)
    eligible_labels: Mapped[list] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    funded_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    executed_at: Mapped[datetime | None]  # a round's distribution moved its money

    sponsor: Mapped["User"] = relationship()  # noqa: F821


class MatchState(str, enum.Enum):
    """Where a match's money is."""

    held = "held"  # in the item's escrow, beside its pledge
    released = "released"  # paid out with the item's payout
    returned = "returned"  # all of it went back to the pool


class PoolMatch(db.Model):
    """``amount_minor`` moved from ``pool`` to ``item``'s escrow for ``pledge``
    (None for a round's share); ``returned_minor`` of it went back to the pool."""

    __tablename__ = "pool_match"
    __table_args__ = (
        UniqueConstraint("pool_id", "pledge_id", name="uq_pool_match_pool_pledge"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("returned_minor >= 0 AND returned_minor <= amount_minor", name="return_within_amount"),
        Index("ix_pool_match_item_state", "item_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("matching_pool.id", ondelete="RESTRICT"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="RESTRICT"))
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledge.id", ondelete="RESTRICT"), index=True)
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    returned_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[MatchState] = mapped_column(db.Enum(MatchState, native_enum=False, length=20),
                                              default=MatchState.held)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payout.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    pool: Mapped[MatchingPool] = relationship()
    item: Mapped["BacklogItem"] = relationship()  # noqa: F821
    pledge: Mapped["Pledge | None"] = relationship()  # noqa: F821

    @property
    def held_minor(self) -> int:
        """What is still in the item's escrow (0 once released or returned)."""
        return self.amount_minor - self.returned_minor if self.state is MatchState.held else 0


class RoundExclusion(db.Model):
    """An admin excluded ``user`` from a round's quadratic funding, with a reason."""

    __tablename__ = "pool_round_exclusion"
    __table_args__ = (UniqueConstraint("pool_id", "user_id", name="uq_pool_round_exclusion_pool_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("matching_pool.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(String(500))
    excluded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PoolRefundState(str, enum.Enum):
    """Where a card refund of a pool's budget back to its sponsor stands."""

    requested = "requested"  # our row exists; Stripe has not answered yet (retried with the same key)
    succeeded = "succeeded"  # Stripe made the refund: booked as returned to the sponsor
    failed = "failed"  # Stripe reported it failed afterwards (card closed): the money is back in the pool, owed


class PoolRefund(db.Model):
    """One Stripe refund of ``amount_minor`` of a card-funded pool's payment
    back to its sponsor (what the pool held when it ended or was cancelled,
    or what came back to it later: each its own, partial, refund). The
    Stripe idempotency key is made from this row's id
    (``pool-refund-<id>``), so a retry after no answer makes one refund."""

    __tablename__ = "pool_refund"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("matching_pool.id", ondelete="RESTRICT"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[PoolRefundState] = mapped_column(db.Enum(PoolRefundState, native_enum=False, length=20),
                                                   default=PoolRefundState.requested)
    refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # Stripe's re_…
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))  # why Stripe could not be asked, or the failure
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]

    @property
    def idempotency_key(self) -> str:
        """The key of this refund's Stripe request (the same on every retry)."""
        return f"pool-refund-{self.id}"
