"""A pool's budget by its rail, both ways, as a pledge's money comes and goes.

In: by card through Stripe Checkout (:func:`start_checkout`; the webhook
events land in :mod:`marketplace.payments.pool_events`, which call
:func:`card_paid`), or by a bank transfer the fiscal host confirms
(:func:`marketplace.pools.service.confirm_budget`).

Out: a pool that ended or was cancelled (:func:`cancel_pool`) owes what it
still holds to its sponsor. A card-funded pool is refunded through Stripe,
partially (only what is left), in two steps like a payout's transfer: the
refund row is committed first (:func:`begin_card_return`), then Stripe is
asked with the row's own idempotency key (:func:`send_card_return`), so a
worker killed in between retries the same refund, never a second one. A
refund Stripe cannot take now stays ``requested`` and is retried
(:func:`return_due`, hourly); one Stripe reports failed afterwards
(:func:`refund_failed`) puts its money back in the pool, owed, flagged on
the pool page for an admin, who tries again or sends it another way
(:func:`marketplace.pools.service.record_return`). A transfer-funded pool's
return is recorded by the fiscal host.

Every move is under the pool's row lock, keyed by our own row ids. Services
flush, never commit.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind, LedgerTransaction
from marketplace.money import Money
from marketplace.payments import stripe_client
from marketplace.payments.stripe_client import PaymentsUnavailable
from marketplace.pools.models import (
    RETURNING_STATES,
    MatchingPool,
    PoolMatch,
    PoolRail,
    PoolRefund,
    PoolRefundState,
    PoolState,
)
from marketplace.pools.service import PoolError, _locked, _move, confirm_budget, pool_account, pool_balance
from marketplace.timeutil import utcnow

ACTOR = "stripe"


# --- in: the budget by card -------------------------------------------------------------

def start_checkout(pool_id: int, *, success_url: str, cancel_url: str, locale: str = "auto") -> str:
    """The sponsor pays the pool's budget by card: a Stripe Checkout Session
    for ``budget_minor`` (see
    :func:`marketplace.payments.stripe_client.create_pool_checkout_session`),
    remembered on the pool; returns the URL to send the sponsor to. Asked
    twice, the same session (the idempotency key names the pool and its
    attempt). Raises :class:`PoolError` (not awaiting its budget),
    ``PaymentRefused`` or ``PaymentsUnavailable`` (nothing changes)."""
    pool = _locked(pool_id)
    if pool.state is not PoolState.awaiting_budget:
        raise PoolError(_("This pool's budget is paid already, or the pool was cancelled."))
    session_id, url = stripe_client.create_pool_checkout_session(
        pool.id, pool.checkout_attempt, Money(pool.budget_minor, pool.currency), pool_name=pool.name,
        success_url=success_url, cancel_url=cancel_url, locale=locale)
    pool.rail, pool.checkout_session_id = PoolRail.card.value, session_id
    db.session.flush()
    return url


def card_paid(pool: MatchingPool, session_id: str | None, payment_intent_id: str | None, received: Money) -> bool:
    """Stripe took the sponsor's card payment (``checkout.session.completed``
    paid, or its asynchronous success, or a charge event that came first):
    the pool is funded with what arrived (:func:`confirm_budget`, key
    ``pool:<id>:received``), once. Returns whether this call funded it.
    Raises :class:`PoolError` when the pool was cancelled or paid another way
    (the payment must be refunded by a person), or for another currency."""
    pool = _locked(pool.id)
    if payment_intent_id and pool.payment_intent_id and pool.payment_intent_id != payment_intent_id:
        raise PoolError(f"pool {pool.id} was paid by {pool.payment_intent_id}; {payment_intent_id} is another "
                        "payment: refund it in Stripe")
    if pool.state is not PoolState.awaiting_budget:
        if pool.payment_intent_id == payment_intent_id and payment_intent_id:
            return False  # the same payment, told again
        raise PoolError(f"pool {pool.id} is {pool.state.value} but Stripe took a card payment for it: "
                        "refund it in Stripe")
    pool.rail = PoolRail.card.value
    pool.payment_intent_id = payment_intent_id or pool.payment_intent_id
    pool.checkout_session_id = session_id or pool.checkout_session_id
    db.session.flush()
    return confirm_budget(pool.id, received, reference=payment_intent_id or session_id or "card",
                          received_on=utcnow().date(), actor=None)


def checkout_dropped(pool: MatchingPool, session_id: str | None, *, why: str) -> bool:
    """The pool's Checkout expired unpaid (or its asynchronous payment failed):
    the sponsor may start another (a new idempotency key). Only the pool's
    current session counts, so a replay or an older session's event changes
    nothing. Returns whether this call changed the pool."""
    pool = _locked(pool.id)
    if pool.state is not PoolState.awaiting_budget or not session_id or pool.checkout_session_id != session_id:
        return False
    pool.checkout_session_id, pool.checkout_attempt = None, pool.checkout_attempt + 1
    db.session.flush()
    audit.record("pool.checkout_dropped", "matching_pool", pool.id, actor=ACTOR,
                 details={"session": session_id, "why": why})
    return True


# --- out: back to the sponsor ---------------------------------------------------------

def open_refund(pool_id: int) -> PoolRefund | None:
    """The pool's card refund Stripe has not answered yet (retried with its key), if any."""
    return db.session.scalar(select(PoolRefund).where(PoolRefund.pool_id == pool_id,
                                                      PoolRefund.state == PoolRefundState.requested)
                             .order_by(PoolRefund.id).limit(1))


def failed_refunds(pool_id: int) -> list[PoolRefund]:
    """The pool's card refunds Stripe reported failed (the admin's flag while the pool still holds money)."""
    return list(db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool_id,
                                                            PoolRefund.state == PoolRefundState.failed)
                                   .order_by(PoolRefund.id)))


def unclaimed(pool: MatchingPool) -> int:
    """What the pool holds that no card refund of ours waiting for Stripe
    (``requested``) claims already (minor units): the most any other way out
    (a refund made in Stripe's dashboard, a chargeback lost) may take. Read
    under the pool's lock."""
    claimed = db.session.scalar(select(func.coalesce(func.sum(PoolRefund.amount_minor), 0)).where(
        PoolRefund.pool_id == pool.id, PoolRefund.state == PoolRefundState.requested))
    return pool_balance(pool) - int(claimed)


def owed_to_sponsor(pool: MatchingPool) -> int:
    """What the sponsor is owed now: all the pool holds once it ended or was cancelled (minor units)."""
    return pool_balance(pool) if pool.state in RETURNING_STATES else 0


def begin_card_return(pool_id: int, *, retry_failed: bool = False) -> int | None:
    """Step one of a card return: under the pool's lock, the refund row of
    what the pool holds (``requested``), to be committed before Stripe is
    asked. An open row is reused (its amount and key unchanged). None when
    nothing is due: the pool is live, not card-funded, holds nothing, or its
    last refund failed (unless ``retry_failed``: an admin tries again).
    Returns the row id."""
    pool = _locked(pool_id)
    if pool.state not in RETURNING_STATES or pool.rail != PoolRail.card.value or not pool.payment_intent_id:
        return None
    row = open_refund(pool.id)
    if row is not None:
        return row.id
    holds = pool_balance(pool)
    if holds <= 0:
        return None
    last = db.session.scalar(select(PoolRefund).where(PoolRefund.pool_id == pool.id)
                             .order_by(PoolRefund.id.desc()).limit(1))
    if last is not None and last.state is PoolRefundState.failed and not retry_failed:
        return None
    row = PoolRefund(pool_id=pool.id, currency=pool.currency, amount_minor=holds, state=PoolRefundState.requested,
                     attempts=0)
    db.session.add(row)
    db.session.flush()
    return row.id


def send_card_return(refund_row_id: int) -> bool:
    """Step two: ask Stripe for the refund (``POST /v1/refunds`` on the pool's
    PaymentIntent, key ``pool-refund-<row id>``, metadata naming the pool
    and the row), then book it under the pool's lock: pool −, sponsor
    returns + (key ``pool-refund:<row id>``). Stripe unreachable: the row
    stays ``requested`` with the error, for the next try with the same key.
    Returns whether this call booked the refund (False: booked already,
    failed, or withdrawn meanwhile)."""
    row = db.session.get(PoolRefund, refund_row_id)
    if row is None:
        return False  # withdrawn: the money left the pool another way (:func:`_withdraw_unsent`)
    pool = _locked(row.pool_id)
    row = db.session.get(PoolRefund, refund_row_id, populate_existing=True)  # as it is under the lock
    if row is None or row.state is not PoolRefundState.requested:
        return False
    try:
        # Made already by an attempt whose answer was lost (a worker killed, or
        # Stripe's 24-hour memory of the key gone)? Found by our row id in its metadata.
        refund_id = _made_already(pool, row) or stripe_client.create_refund(
            pool.payment_intent_id, Money(row.amount_minor, row.currency), idempotency_key=row.idempotency_key,
            metadata={"pool_id": pool.id, "pool_refund_id": row.id})
    except PaymentsUnavailable as exc:
        row.attempts += 1
        row.last_error = str(exc)[:500]
        db.session.flush()
        return False
    db.session.refresh(row)  # a refund.failed for it may have been applied meanwhile (it waits for our lock)
    if row.state is not PoolRefundState.requested:
        return False
    if row.amount_minor > pool_balance(pool):
        # Cannot happen while every other way out respects :func:`unclaimed`; never booked below zero.
        raise PoolError(f"pool {pool.id}: card refund {refund_id} of {row.amount_minor} but the pool holds "
                        f"{pool_balance(pool)}: check by hand")
    ledger.post("pool_returned", f"pool-refund:{row.id}", [
        ledger.Line(pool_account(pool), Money(-row.amount_minor, pool.currency)),
        ledger.Line(ledger.account(AccountKind.sponsor_returns, pool_id=pool.id),
                    Money(row.amount_minor, pool.currency)),
    ], memo=f"pool {pool.id} refunded to its sponsor by card: {refund_id}", reference=("pool_returned", pool.id))
    row.state, row.refund_id, row.settled_at, row.last_error = PoolRefundState.succeeded, refund_id, utcnow(), None
    row.attempts += 1
    pool.returned_minor += row.amount_minor
    db.session.flush()
    audit.record("pool.refunded", "matching_pool", pool.id, actor="pools",
                 details={"amount_minor": row.amount_minor, "refund_id": refund_id, "pool_refund": row.id})
    return True


def _made_already(pool: MatchingPool, row: PoolRefund) -> str | None:
    """The id of a refund Stripe already made for ``row`` (its metadata names the row), if any.
    Raises ``PaymentsUnavailable``."""
    for refund in stripe_client.list_refunds(pool.payment_intent_id):
        metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
        if metadata.get("pool_refund_id") == str(row.id) and isinstance(refund.get("id"), str):
            return refund["id"]
    return None


def return_due(after_each=None) -> dict:
    """Cron: every ended or cancelled card-funded pool that holds money is
    refunded to its sponsor (what it holds; later returns of matches make
    further partial refunds), and refunds Stripe could not be asked for are
    retried with their own keys. ``after_each`` (the job's commit) runs
    after each step, so the row is committed before Stripe is asked.
    Returns ``{"refunded": [pool ids], "waiting": [pool ids]}``."""
    done: dict[str, list[int]] = {"refunded": [], "waiting": []}
    for pool_id in list(db.session.scalars(select(MatchingPool.id).where(
            MatchingPool.state.in_(RETURNING_STATES), MatchingPool.rail == PoolRail.card.value)
            .order_by(MatchingPool.id))):
        row_id = begin_card_return(pool_id)
        if row_id is None:
            continue
        if after_each:
            after_each()
        done["refunded" if send_card_return(row_id) else "waiting"].append(pool_id)
        if after_each:
            after_each()
    return done


def refund_failed(pool: MatchingPool, refund: dict) -> bool:
    """Stripe reports a refund of the pool's payment failed (``refund.failed``,
    or a refund whose status is ``failed`` / ``canceled``): once per refund,
    its money is back in the pool (sponsor returns −, pool +; key
    ``pool-refund:<row>:failed``), owed to the sponsor and flagged for an
    admin. Matched by the row id in its metadata, else its refund id. A
    failure seen before the refund was booked marks the row so that it is
    never booked. Returns whether this call recorded the failure."""
    pool = _locked(pool.id)
    metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
    row = None
    if str(metadata.get("pool_refund_id") or "").isdigit():
        row = db.session.get(PoolRefund, int(metadata["pool_refund_id"]))
    if row is not None and row.pool_id != pool.id:
        row = None
    if row is None and isinstance(refund.get("id"), str):
        row = db.session.scalar(select(PoolRefund).where(PoolRefund.refund_id == refund["id"],
                                                         PoolRefund.pool_id == pool.id))
    if row is None and isinstance(refund.get("id"), str):
        return _elsewhere_failed(pool, refund)  # made in the dashboard, or for a row withdrawn since
    if row is None or row.state is PoolRefundState.failed:
        return False
    db.session.refresh(row)
    reason = refund.get("failure_reason") if isinstance(refund.get("failure_reason"), str) else refund.get("status")
    if row.state is PoolRefundState.succeeded:
        ledger.post("pool_return_failed", f"pool-refund:{row.id}:failed", [
            ledger.Line(ledger.account(AccountKind.sponsor_returns, pool_id=pool.id),
                        Money(-row.amount_minor, pool.currency)),
            ledger.Line(pool_account(pool), Money(row.amount_minor, pool.currency)),
        ], memo=f"refund {row.refund_id} to pool {pool.id}'s sponsor failed: owed",
            reference=("pool_returned", pool.id))
        pool.returned_minor -= row.amount_minor
    row.state, row.failed_at = PoolRefundState.failed, utcnow()
    row.refund_id = row.refund_id or (refund.get("id") if isinstance(refund.get("id"), str) else None)
    row.last_error = str(reason or "failed")[:500]
    db.session.flush()
    audit.record("pool.refund_failed", "matching_pool", pool.id, actor=ACTOR,
                 details={"pool_refund": row.id, "refund_id": row.refund_id, "reason": reason})
    return True


def _elsewhere_failed(pool: MatchingPool, refund: dict) -> bool:
    """A refund made in Stripe's dashboard failed: if it was booked as returned
    (:func:`returned_elsewhere`), once, its money is back in the pool (sponsor
    returns −, pool +; key ``pool-elsewhere:<refund id>:failed``), for the
    same way back as the rest. Returns whether this call booked it."""
    key = f"pool-elsewhere:{refund['id']}"
    booked = db.session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key))
    if booked is None or ledger.posted(f"{key}:failed"):
        return False
    returns = ledger.account(AccountKind.sponsor_returns, pool_id=pool.id)
    amount_minor = sum(e.amount_minor for e in booked.entries if e.account_id == returns.id)
    if amount_minor <= 0:
        return False
    ledger.post("pool_return_failed", f"{key}:failed", [
        ledger.Line(returns, Money(-amount_minor, pool.currency)),
        ledger.Line(pool_account(pool), Money(amount_minor, pool.currency)),
    ], memo=f"refund {refund['id']} made in Stripe to pool {pool.id}'s sponsor failed",
        reference=("pool_returned", pool.id))
    pool.returned_minor -= amount_minor
    db.session.flush()
    audit.record("pool.refund_failed", "matching_pool", pool.id, actor=ACTOR,
                 details={"refund_id": refund["id"], "amount_minor": amount_minor, "made": "in Stripe"})
    return True


def _withdraw_unsent(pool: MatchingPool, *, why: str) -> None:
    """Money left the pool's payment another way while our refund rows wait
    (``requested``): each row Stripe has not made (none of its refunds names
    the row) is withdrawn (deleted, audited), so that the next
    :func:`return_due` refunds what the pool still holds under a new row and
    key, never the same money twice. Runs under the pool's lock, which a
    worker asking Stripe holds too. Raises ``PaymentsUnavailable``."""
    for row in list(db.session.scalars(select(PoolRefund).where(
            PoolRefund.pool_id == pool.id, PoolRefund.state == PoolRefundState.requested).order_by(PoolRefund.id))):
        if _made_already(pool, row) is not None:
            continue
        audit.record("pool.refund_withdrawn", "matching_pool", pool.id, actor=ACTOR,
                     details={"pool_refund": row.id, "amount_minor": row.amount_minor, "attempts": row.attempts,
                              "why": why})
        db.session.delete(row)
    db.session.flush()


def returned_elsewhere(pool: MatchingPool, amount_minor: int, *, key: str, why: str) -> bool:
    """Money of the pool's payment went back to the sponsor outside the
    commons (a refund made in Stripe's dashboard, a chargeback lost): once
    per ``key`` (Stripe's object id), it is booked as returned out of what
    the pool holds (pool −, sponsor returns +). Raises :class:`PoolError`
    when the pool holds less (its money matched pledges meanwhile: a person
    must look). Returns whether this call booked it."""
    pool = _locked(pool.id)
    if ledger.posted(f"pool-elsewhere:{key}") or db.session.scalar(
            select(func.count()).where(PoolRefund.refund_id == key)):
        return False
    if amount_minor <= 0:
        return False
    if amount_minor > unclaimed(pool):
        _withdraw_unsent(pool, why=f"{why} {key}")
    if amount_minor > unclaimed(pool):
        # What the pool holds is spoken for (matched, or claimed by our own refund
        # that Stripe made already): booking it too would return the same money
        # twice and leave the pool below zero.
        raise PoolError(f"pool {pool.id}: {why} of {amount_minor} but it holds {pool_balance(pool)}, "
                        f"of which {pool_balance(pool) - unclaimed(pool)} is a card refund of ours on its way")
    ledger.post("pool_returned", f"pool-elsewhere:{key}", [
        ledger.Line(pool_account(pool), Money(-amount_minor, pool.currency)),
        ledger.Line(ledger.account(AccountKind.sponsor_returns, pool_id=pool.id),
                    Money(amount_minor, pool.currency)),
    ], memo=f"pool {pool.id}: {why} {key}", reference=("pool_returned", pool.id))
    pool.returned_minor += amount_minor
    db.session.flush()
    audit.record("pool.returned_elsewhere", "matching_pool", pool.id, actor=ACTOR,
                 details={"amount_minor": amount_minor, "key": key, "why": why})
    return True


# --- cancelling ---------------------------------------------------------------------

def cancel_refusal(pool: MatchingPool) -> str | None:
    """Why the pool cannot be cancelled now (for the person), or None: it is
    waiting for its budget, or funded but has matched nothing yet."""
    if pool.state is PoolState.awaiting_budget:
        return None
    if pool.state is not PoolState.funded:
        return _("This pool has ended already.")
    if db.session.scalar(select(PoolMatch.id).where(PoolMatch.pool_id == pool.id).limit(1)) is not None:
        return _("This pool has matched pledges already: it stays open until its window ends.")
    return None


def cancel_pool(pool_id: int, *, actor: User) -> bool:
    """The sponsor (or an admin) cancels a pool: before its budget came (a
    card Checkout still open is expired at Stripe first; paid meanwhile →
    refused), or funded but before any match, under the pool's lock, so no
    pledge can be matched at the same moment. A funded pool's budget is then
    owed back (card: :func:`begin_card_return` next; transfer: the fiscal
    host records it). Returns whether this call cancelled it. Raises
    :class:`PoolError` or ``PaymentsUnavailable`` (nothing changed)."""
    pool = _locked(pool_id)
    if actor.id != pool.sponsor_id and not actor.is_admin:
        raise PoolError(_("Only the pool's sponsor can cancel it."))
    if pool.state is PoolState.cancelled:
        return False
    refusal = cancel_refusal(pool)
    if refusal is not None:
        raise PoolError(refusal)
    was = pool.state
    if was is PoolState.awaiting_budget and pool.checkout_session_id:
        session_obj = stripe_client.expire_checkout_session(pool.checkout_session_id)
        if session_obj.get("status") == "complete":
            raise PoolError(_("This pool's budget was paid already; the payment is being confirmed."))
    if not _move(pool, PoolState.cancelled, ended_at=utcnow()):
        return False
    audit.record("pool.cancelled", "matching_pool", pool.id, actor=f"user:{actor.id}", actor_user_id=actor.id,
                 details={"was": was.value, "holds_minor": pool_balance(pool)})
    return True

