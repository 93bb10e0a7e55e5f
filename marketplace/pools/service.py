"""Matching pools and rounds: their money moves, each a balanced ledger
transaction keyed by our own row ids, under the pool's row lock.

- A sponsor's budget arrives (:func:`confirm_budget`): sponsor payments → pool.
- A pledge becomes held (the pledges' ``held`` signal, same transaction):
  each live ratio pool it qualifies for moves its match pool → escrow
  (:func:`match_pledge`). Under the pool's row lock the pool's balance is read
  from the entries, so two pledges held at the same moment never take more
  than the pool holds: the second waits for the first and gets what is left.
- Money leaves the pledge (a refund, a dispute lost, a move: the ``money_left``
  signal), or the item closes without the work (:func:`return_item_matches`):
  the match's share goes escrow → pool, never to the funder.
- A payout releases the matches it pays (:func:`release_matches`).
- The window ends (:func:`end_due`): no more matches, a round is divided by
  quadratic funding (:func:`execute_round`); what the pool holds goes back to
  the sponsor when the fiscal host records the transfer (:func:`record_return`).

Lock order, everywhere: pledge, then the item's funding row (taken by any
escrow posting), then the pools by id. Services flush, never commit.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.backlog.models import BacklogItem
from marketplace.claims.models import Claim, ClaimState
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind, LedgerTransaction
from marketplace.money import Money
from marketplace.payments import stripe_client
from marketplace.pledges import signals as pledge_signals
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.pools import quadratic
from marketplace.pools.models import (
    POOL_ALLOWED_FROM,
    RETURNING_STATES,
    MatchingPool,
    MatchState,
    PoolKind,
    PoolMatch,
    PoolRefund,
    PoolRefundState,
    PoolState,
    RoundExclusion,
)
from marketplace.projects.models import ProjectMaintainer
from marketplace.timeutil import utcnow

HOLDING = (PledgeState.held, PledgeState.partially_refunded, PledgeState.disputed)
# Claims whose holder's pledges a pool does not match (they would match themselves).
CLAIMANT_STATES = (ClaimState.requested, ClaimState.approved, ClaimState.submitted, ClaimState.completed)


class PoolError(DomainError):
    """A pool operation that cannot be done; the message is for the person."""


# --- accounts and figures -----------------------------------------------------------

def pool_account(pool: MatchingPool):
    """The pool's own ledger account (its unspent budget)."""
    return ledger.account(AccountKind.matching_pool, pool_id=pool.id)


def pool_balance(pool: MatchingPool) -> int:
    """What the pool holds now, from the ledger entries alone (minor units of its currency)."""
    return ledger.balance(pool_account(pool), pool.currency)


def _locked(pool_id: int) -> MatchingPool:
    pool = db.session.get(MatchingPool, pool_id, with_for_update=True, populate_existing=True)
    if pool is None:
        raise PoolError(_("No such pool."))
    return pool


def _move(pool: MatchingPool, to: PoolState, **columns) -> bool:
    """One conditional UPDATE from an allowed state; False when the pool moved already."""
    result = db.session.execute(
        update(MatchingPool).where(MatchingPool.id == pool.id, MatchingPool.state.in_(POOL_ALLOWED_FROM[to]))
        .values(state=to, **columns).execution_options(synchronize_session=False))
    db.session.refresh(pool)
    return result.rowcount == 1


# --- creation and budget -------------------------------------------------------------

def create_pool(sponsor: User, *, name: str, currency: str, budget_minor: int, starts_at: datetime,
                ends_at: datetime, kind: PoolKind = PoolKind.ratio, ratio_percent: int = 100,
                cap_per_pledge_minor: int | None = None, cap_per_funder_minor: int | None = None,
                cap_per_item_minor: int | None = None, min_pledge_minor: int | None = None,
                item_cap_bps: int | None = None, project_ids: list[int] | None = None,
                sdgs: list[int] | None = None, labels: list[str] | None = None,
                description: str | None = None, organisation_id: int | None = None) -> MatchingPool:
    """A pool awaiting its budget (``budget_minor`` of ``currency``), paid by bank
    transfer with the reference it is given (``BP<id>-<6 hex>``).

    ``ratio_percent`` (ratio pools): the match as a percent of each eligible
    pledge (50, 100, 200). Caps and ``min_pledge_minor`` are minor units (None:
    none); ``item_cap_bps`` (rounds): an item's share of the pool at most, in
    basis points. ``starts_at`` < ``ends_at``, naive UTC. Raises :class:`PoolError`.
    """
    if budget_minor <= 0:
        raise PoolError(_("The budget must be more than zero."))
    if ends_at <= starts_at:
        raise PoolError(_("The window must end after it starts."))
    if kind is PoolKind.ratio and ratio_percent <= 0:
        raise PoolError(_("The ratio must be more than zero."))
    if item_cap_bps is not None and not 0 < item_cap_bps <= 10_000:
        raise PoolError(_("The per-item cap is a share of the pool above 0% and at most 100%."))
    for cap in (cap_per_pledge_minor, cap_per_funder_minor, cap_per_item_minor, min_pledge_minor):
        if cap is not None and cap <= 0:
            raise PoolError(_("Caps and the minimum pledge must be more than zero (or left empty)."))
    pool = MatchingPool(
        name=name.strip(), description=description, kind=kind, sponsor_id=sponsor.id,
        organisation_id=organisation_id, currency=currency.upper(), budget_minor=budget_minor,
        ratio_percent=ratio_percent, cap_per_pledge_minor=cap_per_pledge_minor,
        cap_per_funder_minor=cap_per_funder_minor, cap_per_item_minor=cap_per_item_minor,
        min_pledge_minor=min_pledge_minor, item_cap_bps=item_cap_bps,
        eligible_project_ids=sorted(set(project_ids or [])), eligible_sdgs=sorted(set(sdgs or [])),
        eligible_labels=sorted({label.strip() for label in labels or [] if label.strip()}),
        starts_at=starts_at, ends_at=ends_at, rail="bank_transfer", received_minor=0, returned_minor=0)
    db.session.add(pool)
    db.session.flush()
    pool.transfer_reference = f"BP{pool.id}-{secrets.token_hex(3).upper()}"
    db.session.flush()
    audit.record("pool.created", "matching_pool", pool.id, actor=f"user:{sponsor.id}", actor_user_id=sponsor.id,
                 details={"budget_minor": budget_minor, "currency": pool.currency, "kind": kind.value})
    return pool


def confirm_budget(pool_id: int, received: Money, *, reference: str, received_on: date, actor: User | None) -> bool:
    """The fiscal host confirms the sponsor's transfer (``actor``), or Stripe
    took the sponsor's card payment (``actor`` None, through
    :func:`marketplace.pools.rails.card_paid`): ``received`` is held in
    the pool (sponsor payments −, pool +; key ``pool:<id>:received``) and the
    pool is funded. What arrived is the pool's money, whatever was announced.
    Returns whether this call funded it (False: funded already). Raises
    :class:`PoolError` for another currency, nothing received, a date in the
    future, a pool cancelled, or (the fiscal host confirming) a pool whose
    card Checkout was paid meanwhile; ``PaymentsUnavailable`` when that
    Checkout could not be closed at Stripe (nothing changes), or the sponsor
    confirming their own pool."""
    pool = _locked(pool_id)
    if actor is not None and pool.sponsor_id == actor.id:  # None: Stripe (the card rail)
        raise PoolError(_("This is your own pool: another admin confirms its money."))
    if pool.state is not PoolState.awaiting_budget:
        if pool.state is PoolState.cancelled:
            raise PoolError(_("This pool was cancelled: send the transfer back."))
        return False
    if received.currency != pool.currency or received.amount_minor <= 0:
        raise PoolError(_("The pool is in %(currency)s; give what arrived in it.", currency=pool.currency))
    if received_on > utcnow().date():
        raise PoolError(_("The date the money arrived cannot be in the future."))
    if actor is not None and pool.checkout_session_id:
        # The sponsor also opened a card Checkout: closed at Stripe first, so that
        # the budget cannot arrive twice (Stripe refuses when it was paid first).
        session_obj = stripe_client.expire_checkout_session(pool.checkout_session_id)
        if session_obj.get("status") == "complete":
            raise PoolError(_("The sponsor paid this pool's budget by card; the payment is being confirmed. "
                              "Send the transfer back."))
    ledger.post("pool_received", f"pool:{pool.id}:received", [
        ledger.Line(ledger.account(AccountKind.sponsor_payments, pool_id=pool.id),
                    Money(-received.amount_minor, pool.currency)),
        ledger.Line(pool_account(pool), received),
    ], reference=("pool_received", pool.id))
    if actor is not None:
        pool.rail = "bank_transfer"  # the fiscal host saw the transfer: it goes back the same way
    _move(pool, PoolState.funded, received_minor=received.amount_minor, funded_at=utcnow())
    audit.record("pool.funded", "matching_pool", pool.id, actor=f"user:{actor.id}" if actor else "stripe",
                 actor_user_id=actor.id if actor else None,
                 details={"received_minor": received.amount_minor, "reference": reference,
                          "received_on": str(received_on)})
    return True


# --- eligibility and the match of one pledge -----------------------------------------

def is_live(pool: MatchingPool, now: datetime | None = None) -> bool:
    """Funded and inside its window (whether it still holds money aside)."""
    now = now or utcnow()
    return pool.state is PoolState.funded and pool.starts_at <= now < pool.ends_at


def item_refusal(pool: MatchingPool, item: BacklogItem) -> str | None:
    """Why the pool does not cover ``item`` (for the person), or None when it does."""
    project = item.repository.project
    if item.hidden or item.work_done:
        return _("The item takes no pledges.")
    if not db.session.scalar(select(ProjectMaintainer.id).where(ProjectMaintainer.project_id == project.id).limit(1)):
        return _("The project has no maintainer yet.")
    if pool.eligible_project_ids and project.id not in pool.eligible_project_ids:
        return _("The pool covers other projects.")
    if pool.eligible_sdgs and not set(pool.eligible_sdgs) & set(project.sdg_numbers):
        return _("The pool covers other SDGs.")
    if pool.eligible_labels and not set(pool.eligible_labels) & set(item.label_names):
        return _("The pool covers items with other labels.")
    return None


def funder_refusal(pool: MatchingPool, item: BacklogItem, funder_id: int) -> str | None:
    """Why the pool does not match ``funder_id``'s pledges to ``item``, or None:
    the sponsor, a maintainer of the item's project and a claimant of the item are not matched."""
    if funder_id == pool.sponsor_id:
        return _("The sponsor's own pledges are not matched.")
    if db.session.scalar(select(ProjectMaintainer.id).where(
            ProjectMaintainer.project_id == item.repository.project_id,
            ProjectMaintainer.user_id == funder_id).limit(1)):
        return _("A maintainer's pledges to their own project are not matched.")
    if db.session.scalar(select(Claim.id).where(Claim.item_id == item.id, Claim.claimant_id == funder_id,
                                                Claim.state.in_(CLAIMANT_STATES)).limit(1)):
        return _("A claimant's pledges to the item they claim are not matched.")
    return None


def _net_matched(pool_id: int, **where) -> int:
    query = select(func.coalesce(func.sum(PoolMatch.amount_minor - PoolMatch.returned_minor), 0)).where(
        PoolMatch.pool_id == pool_id)
    for column, value in where.items():
        query = query.where(getattr(PoolMatch, column) == value)
    return int(db.session.scalar(query))


def match_amount(pool: MatchingPool, item: BacklogItem, funder_id: int, money: Money) -> int:
    """What ``pool`` would match now for a pledge of ``money`` by ``funder_id``
    to ``item`` (minor units; 0 when it would not): the ratio of the pledge,
    rounded down, within the caps per pledge, per funder and per item (net of
    matches given back), and what the pool holds. Exact only under the pool's
    row lock; elsewhere a preview."""
    if (pool.kind is not PoolKind.ratio or not is_live(pool) or money.currency != pool.currency
            or (pool.min_pledge_minor and money.amount_minor < pool.min_pledge_minor)
            or item_refusal(pool, item) or funder_refusal(pool, item, funder_id)):
        return 0
    limits = [money.amount_minor * pool.ratio_percent // 100, pool_balance(pool)]
    if pool.cap_per_pledge_minor is not None:
        limits.append(pool.cap_per_pledge_minor)
    if pool.cap_per_funder_minor is not None:
        limits.append(pool.cap_per_funder_minor - _net_matched(pool.id, funder_id=funder_id))
    if pool.cap_per_item_minor is not None:
        limits.append(pool.cap_per_item_minor - _net_matched(pool.id, item_id=item.id))
    return max(0, min(limits))


def _live_ratio_pools(currency: str, now: datetime) -> list[MatchingPool]:
    return list(db.session.scalars(select(MatchingPool).where(
        MatchingPool.kind == PoolKind.ratio, MatchingPool.state == PoolState.funded,
        MatchingPool.currency == currency, MatchingPool.starts_at <= now, MatchingPool.ends_at > now)
        .order_by(MatchingPool.id)))


@dataclass(frozen=True)
class MatchPreview:
    """What one pool would add to a pledge (minor units of ``pool.currency``)."""

    pool: MatchingPool
    amount_minor: int


def preview(item: BacklogItem, funder_id: int | None, money: Money) -> list[MatchPreview]:
    """What each live pool would match for a pledge of ``money`` to ``item`` by
    ``funder_id`` (None: a visitor, counted as an ordinary funder), for the
    pledge form before paying. Not a promise: the pools may be spent meanwhile."""
    found = []
    for pool in _live_ratio_pools(money.currency, utcnow()):
        amount = match_amount(pool, item, funder_id or 0, money)
        if amount:
            found.append(MatchPreview(pool, amount))
    return found


def match_pledge(pledge: Pledge, **_extra) -> list[PoolMatch]:
    """The pledge is held now (the pledges' ``held`` signal, under its row lock
    and in its transaction): each live ratio pool it qualifies for moves its
    match to the item's escrow (pool −, escrow +; key
    ``pool:<id>:pledge:<id>:match``), decided under the pool's row lock.
    Returns the matches made."""
    made = []
    now = utcnow()
    for candidate in _live_ratio_pools(pledge.currency, now):
        pool = _locked(candidate.id)
        if db.session.scalar(select(PoolMatch.id).where(PoolMatch.pool_id == pool.id,
                                                        PoolMatch.pledge_id == pledge.id)):
            continue
        amount = match_amount(pool, pledge.item, pledge.funder_id, Money(pledge.amount_minor, pledge.currency))
        if amount <= 0:
            continue
        match = PoolMatch(pool_id=pool.id, item_id=pledge.item_id, pledge_id=pledge.id, funder_id=pledge.funder_id,
                          currency=pledge.currency, amount_minor=amount, returned_minor=0, state=MatchState.held)
        db.session.add(match)
        db.session.flush()
        ledger.post("pool_match", f"pool:{pool.id}:pledge:{pledge.id}:match", [
            ledger.Line(pool_account(pool), Money(-amount, pool.currency)),
            ledger.Line(ledger.account(AccountKind.item_escrow, item_id=pledge.item_id), Money(amount, pool.currency)),
        ], memo=f"pool {pool.id} matches pledge {pledge.id}", reference=("pool_match", match.id))
        audit.record("pool.matched", "matching_pool", pool.id, actor="pools",
                     details={"pledge": pledge.id, "item": pledge.item_id, "amount_minor": amount})
        made.append(match)
    return made


# --- matches going back ---------------------------------------------------------------

def _give_back(match: PoolMatch, amount_minor: int, *, why: str) -> None:
    """``amount_minor`` of ``match`` goes from its item's escrow back to its pool
    (key ``pool-match:<id>:returned-after-<returned so far>``)."""
    if amount_minor <= 0:
        return
    pool = _locked(match.pool_id)
    db.session.refresh(match)
    amount_minor = min(amount_minor, match.held_minor)
    if amount_minor <= 0:
        return
    ledger.post("pool_match_returned", f"pool-match:{match.id}:returned-after-{match.returned_minor}", [
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=match.item_id),
                    Money(-amount_minor, match.currency)),
        ledger.Line(pool_account(pool), Money(amount_minor, match.currency)),
    ], memo=f"match {match.id} back to pool {pool.id}: {why}", reference=("pool_match_returned", match.id))
    match.returned_minor += amount_minor
    if match.returned_minor == match.amount_minor:
        match.state = MatchState.returned
    db.session.flush()
    audit.record("pool.match_returned", "matching_pool", pool.id, actor="pools",
                 details={"match": match.id, "amount_minor": amount_minor, "why": why})


def follow_pledge(pledge: Pledge, **_extra) -> None:
    """Money left the pledge, or the pledge moved (the pledges' ``money_left``
    signal, under its row lock): each held match of it keeps the share of its
    amount that the pledge still holds on the match's item, rounded down
    (amount × held ÷ pledged), and gives the rest back to its pool. A refunded
    pledge's match goes back whole; the funder never gets it."""
    for match in db.session.scalars(select(PoolMatch).where(
            PoolMatch.pledge_id == pledge.id, PoolMatch.state == MatchState.held)
            .order_by(PoolMatch.pool_id, PoolMatch.id)):
        keeps = 0
        if pledge.item_id == match.item_id and pledge.state in HOLDING:
            keeps = match.amount_minor * pledge.held_minor // pledge.amount_minor
        _give_back(match, match.held_minor - keeps, why="pledge refunded" if not keeps else "pledge partly refunded")


def return_item_matches(item: BacklogItem, *, why: str) -> int:
    """The item closed without the work (not planned, duplicate, moved,
    deleted, withheld): every match it holds goes back to its pool at once,
    while its pledges wait for their funders. Returns the minor units given back."""
    given = 0
    matches = list(db.session.scalars(select(PoolMatch).where(
        PoolMatch.item_id == item.id, PoolMatch.state == MatchState.held)
        .order_by(PoolMatch.pool_id, PoolMatch.id)))
    for currency in sorted({m.currency for m in matches}):
        ledger.funding_row(item.id, currency)  # the escrow's lock first, as every escrow posting takes it
    for match in matches:
        held = match.held_minor
        _give_back(match, held, why=why)
        given += held
    return given


# --- payouts --------------------------------------------------------------------------

def held_matches(item_id: int, currency: str, pledge_ids: list[int]) -> list[PoolMatch]:
    """The matches a payout of ``item_id`` in ``currency`` covering ``pledge_ids``
    pays with them: held matches of those pledges, and a round's shares of the item."""
    return [m for m in db.session.scalars(
        select(PoolMatch).where(PoolMatch.item_id == item_id, PoolMatch.currency == currency,
                                PoolMatch.state == MatchState.held).order_by(PoolMatch.id)
        .execution_options(populate_existing=True))
        if m.pledge_id is None or m.pledge_id in pledge_ids]


def release_matches(payout_id: int, matches: list[PoolMatch]) -> None:
    """The payout ``payout_id`` paid these matches out with their pledges."""
    for match in matches:
        match.state, match.payout_id = MatchState.released, payout_id
    db.session.flush()


def unrelease_matches(payout_id: int) -> None:
    """The payout ``payout_id`` came back into escrow: its matches are held again."""
    for match in db.session.scalars(select(PoolMatch).where(PoolMatch.payout_id == payout_id,
                                                            PoolMatch.state == MatchState.released)):
        match.state, match.payout_id = MatchState.held, None
    db.session.flush()


# --- the end of a pool ----------------------------------------------------------------

def end_due(now: datetime | None = None) -> list[int]:
    """Cron: every funded pool whose window is over ends (a round is divided
    first, :func:`execute_round`); what it holds is then due back to the
    sponsor (:func:`record_return`). Idempotent. Returns the pool ids ended."""
    now = now or utcnow()
    ended = []
    for pool_id in db.session.scalars(select(MatchingPool.id).where(
            MatchingPool.state == PoolState.funded, MatchingPool.ends_at <= now).order_by(MatchingPool.id)):
        pool = _locked(pool_id)
        if pool.state is not PoolState.funded or pool.ends_at > now:
            continue
        if pool.kind is PoolKind.quadratic:
            execute_round(pool.id, now=now)
        if _move(pool, PoolState.ended, ended_at=now):
            audit.record("pool.ended", "matching_pool", pool.id, actor="job:end_pools",
                         details={"holds_minor": pool_balance(pool)})
            ended.append(pool.id)
    return ended


def record_return(pool_id: int, *, reference: str, actor: User) -> int:
    """The fiscal host sent what an ended pool holds back to its sponsor:
    pool −, sponsor returns + (key ``pool:<id>:returned-<n>``, the pool's n-th such return).
    Also for a card-funded pool whose refund failed (the money goes another way).
    Matches that come back later (a refund after the end) are due again.
    Returns the minor units returned. Raises :class:`PoolError` while the pool
    is live, when it holds nothing, or for the sponsor recording their own return."""
    pool = _locked(pool_id)
    if actor is not None and pool.sponsor_id == actor.id:  # None: Stripe (the card rail)
        raise PoolError(_("This is your own pool: another admin records what went back to you."))
    if pool.state not in RETURNING_STATES:
        raise PoolError(_("Only an ended or cancelled pool's money goes back to its sponsor."))
    if db.session.scalar(select(PoolRefund.id).where(PoolRefund.pool_id == pool.id,
                                                     PoolRefund.state == PoolRefundState.requested).limit(1)):
        raise PoolError(_("A card refund of this pool is on its way at Stripe; wait for it before sending "
                          "money another way."))
    holds = pool_balance(pool)
    if holds <= 0:
        raise PoolError(_("The pool holds nothing to return."))
    if not (reference or "").strip():
        raise PoolError(_("Give the reference of the transfer back."))
    # Numbered by the pool's manual returns so far (under its lock): "returned
    # so far" can come back to an earlier value when a card refund fails.
    number = db.session.scalar(select(func.count()).where(
        LedgerTransaction.idempotency_key.like(f"pool:{pool.id}:returned-%")))
    ledger.post("pool_returned", f"pool:{pool.id}:returned-{number + 1}", [
        ledger.Line(pool_account(pool), Money(-holds, pool.currency)),
        ledger.Line(ledger.account(AccountKind.sponsor_returns, pool_id=pool.id), Money(holds, pool.currency)),
    ], memo=f"pool {pool.id} back to its sponsor: {reference.strip()[:100]}", reference=("pool_returned", pool.id))
    pool.returned_minor += holds
    db.session.flush()
    audit.record("pool.returned", "matching_pool", pool.id, actor=f"user:{actor.id}", actor_user_id=actor.id,
                 details={"amount_minor": holds, "reference": reference.strip()})
    return holds


# --- quadratic-funding rounds ---------------------------------------------------------

@dataclass(frozen=True)
class RoundLine:
    """One item of a round's distribution (minor units): its funders counted, raw match and share."""

    item: BacklogItem
    funders: int
    contributed_minor: int
    raw_minor: int
    share_minor: int


def round_contributions(pool: MatchingPool) -> dict[int, dict[int, int]]:
    """item id → funder id → contribution: the sum of what each funder's pledges
    in the pool's currency, held during the round's window, still hold (or
    paid out). A funder counts once per item however many pledges they split
    it into; only funders with a confirmed e-mail count, and neither the
    sponsor, an excluded funder, a maintainer of the item's project nor its claimant."""
    excluded = set(db.session.scalars(select(RoundExclusion.user_id).where(RoundExclusion.pool_id == pool.id)))
    rows = db.session.execute(
        select(Pledge, User).join(User, User.id == Pledge.funder_id)
        .where(Pledge.currency == pool.currency,
               Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded, PledgeState.released]),
               Pledge.held_at >= pool.starts_at, Pledge.held_at < pool.ends_at,
               User.email_verified_at.is_not(None))
        .order_by(Pledge.id)).all()
    by_item: dict[int, dict[int, int]] = {}
    refusals: dict[tuple[int, int], bool] = {}
    for pledge, funder in rows:
        if funder.id in excluded:
            continue
        if pledge.item_id not in by_item and item_refusal(pool, pledge.item):
            continue
        key = (pledge.item_id, funder.id)
        if key not in refusals:
            refusals[key] = funder_refusal(pool, pledge.item, funder.id) is not None
        if refusals[key]:
            continue
        kept = pledge.amount_minor - pledge.refunded_minor
        if kept > 0:
            funders = by_item.setdefault(pledge.item_id, {})
            funders[funder.id] = funders.get(funder.id, 0) + kept
    return by_item


def round_distribution(pool: MatchingPool, pool_minor: int | None = None) -> tuple[list[RoundLine], int]:
    """The round's division of ``pool_minor`` (default: what the pool received)
    by quadratic funding (:mod:`marketplace.pools.quadratic`), item by item
    (by item id), and what is left over for the sponsor. Published as a
    preview during the round; the same computation moves the money at its end."""
    pool_minor = pool.received_minor if pool_minor is None else pool_minor
    contributions = round_contributions(pool)
    raw = {item_id: quadratic.raw_match(list(funders.values())) for item_id, funders in contributions.items()}
    cap = pool_minor * pool.item_cap_bps // 10_000 if pool.item_cap_bps else None
    shares, left = quadratic.distribute(raw, pool_minor, cap)
    lines = [RoundLine(db.session.get(BacklogItem, item_id), len(contributions[item_id]),
                       sum(contributions[item_id].values()), raw[item_id], shares[item_id])
             for item_id in sorted(contributions)]
    return lines, left


def execute_round(pool_id: int, now: datetime | None = None) -> bool:
    """Move a round's distribution, once: each item's share goes pool → escrow
    (a match with no pledge; key ``round:<pool>:item:<item>``). Under the
    pool's row lock, and only after its window; a second run finds
    ``executed_at`` set and moves nothing. What no item takes stays in the
    pool for the sponsor. Returns whether this call executed it."""
    now = now or utcnow()
    pool = _locked(pool_id)
    if pool.kind is not PoolKind.quadratic or pool.executed_at is not None or pool.state is not PoolState.funded:
        return False
    if pool.ends_at > now:
        raise PoolError(_("The round is still open."))
    lines, _left = round_distribution(pool, pool_balance(pool))
    for line in lines:
        if not line.share_minor:
            continue
        match = PoolMatch(pool_id=pool.id, item_id=line.item.id, pledge_id=None, funder_id=None,
                          currency=pool.currency, amount_minor=line.share_minor, returned_minor=0,
                          state=MatchState.held)
        db.session.add(match)
        db.session.flush()
        ledger.post("pool_match", f"round:{pool.id}:item:{line.item.id}", [
            ledger.Line(pool_account(pool), Money(-line.share_minor, pool.currency)),
            ledger.Line(ledger.account(AccountKind.item_escrow, item_id=line.item.id),
                        Money(line.share_minor, pool.currency)),
        ], memo=f"round {pool.id}: quadratic funding", reference=("pool_match", match.id))
    pool.executed_at = now
    db.session.flush()
    audit.record("pool.round_executed", "matching_pool", pool.id, actor="job:end_pools",
                 details={"shares": [[line.item.id, line.share_minor] for line in lines]})
    return True


def exclude_from_round(pool_id: int, user_id: int, *, reason: str, admin: User) -> RoundExclusion:
    """An admin excludes a funder from a round's quadratic funding, with a
    reason (recorded and audited). Raises :class:`PoolError` after execution."""
    pool = _locked(pool_id)
    reason = (reason or "").strip()
    if not reason:
        raise PoolError(_("Give the reason."))
    if pool.executed_at is not None:
        raise PoolError(_("The round was executed already."))
    row = db.session.scalar(select(RoundExclusion).where(RoundExclusion.pool_id == pool.id,
                                                         RoundExclusion.user_id == user_id))
    if row is None:
        row = RoundExclusion(pool_id=pool.id, user_id=user_id, reason=reason[:500], excluded_by_id=admin.id)
        db.session.add(row)
        db.session.flush()
        audit.record("pool.funder_excluded", "matching_pool", pool.id, actor=f"user:{admin.id}",
                     actor_user_id=admin.id, details={"user": user_id, "reason": reason[:500]})
    return row


def connect_signals() -> None:
    """Connect the pools to the pledges' signals (at app setup): a pledge held
    is matched, money leaving a pledge takes its match's share back to the pool."""
    pledge_signals.held.connect(match_pledge, weak=False)
    pledge_signals.money_left.connect(follow_pledge, weak=False)
