"""Money jobs (queue ``money``)."""
from marketplace.backlog.ending import end_withheld
from marketplace.claims.service import lapse_due, warn_lapsing
from marketplace.extensions import db
from marketplace.funds.service import return_expired as return_expired_allotments_due
from marketplace.ledger.summary import refresh as refresh_summary
from marketplace.payouts.service import begin_transfer, execute, retry_due, transfer
from marketplace.payouts.service import reconcile_transfers as reconcile
from marketplace.pledges.service import (
    expire_unpaid,
    refund_expired,
    refund_not_planned,
)
from marketplace.pools.rails import return_due as return_due_pools
from marketplace.pools.service import end_due as end_due_pools
from marketplace.tasks import job
from marketplace.timeutil import utcnow

CRON_TIMEOUT = 600  # seconds, for each periodic pass


@job(queue="money", timeout=CRON_TIMEOUT)
def reconcile_ledger() -> int:
    """Cron (hourly): the full ledger check and fresh totals, stored in the
    ledger summary that /transparency and /api/v1/ledger show; returns the
    number of violations (each is on the summary and in ``flask ledger check``)."""
    violations = refresh_summary()
    db.session.commit()
    return len(violations)


@job(queue="money", timeout=CRON_TIMEOUT)
def refund_expired_pledges() -> list[int]:
    """Cron: refund every held pledge whose expiry passed while its item is unsolved.

    Each refund is keyed by the pledge id, so a second run refunds nothing more.
    """
    refunded = refund_expired()
    db.session.commit()
    return refunded


@job(queue="money", timeout=CRON_TIMEOUT)
def refund_not_planned_items() -> list[int]:
    """Cron: refund what is held for items closed without the work (not
    planned, duplicate, moved, unknown) after the policy window, for items
    deleted on the forge, and for items the forge kept private past the
    window (their claims and open payouts end first)."""
    end_withheld()
    db.session.commit()
    refunded = refund_not_planned()
    db.session.commit()
    return refunded


@job(queue="money", timeout=CRON_TIMEOUT)
def cancel_unpaid_pledges() -> list[int]:
    """Cron: cancel pledges still unpaid after ``PLEDGE_UNPAID_CARD_HOURS`` /
    ``PLEDGE_UNPAID_TRANSFER_DAYS`` (a card pledge's Checkout is expired at Stripe first)."""
    cancelled = expire_unpaid()
    db.session.commit()
    return cancelled


@job(queue="money", timeout=300)
def execute_payout(payout_id: int) -> bool:
    """Execute one approved payout once its dispute window has passed (a no-op otherwise)."""
    done = execute(payout_id)
    db.session.commit()
    return done


@job(queue="money", timeout=120)
def transfer_share(share_id: int) -> bool:
    """Pay one share by Stripe transfer; the same idempotency key on every retry.

    Two commits: the attempt in flight first, on its own, then the outcome; a
    worker killed in between leaves the marker, and the retry looks for the
    transfer before making one.
    """
    now = utcnow()
    if not begin_transfer(share_id, now):
        db.session.commit()
        return False
    db.session.commit()
    paid = transfer(share_id, now)
    db.session.commit()
    return paid


@job(queue="money", timeout=CRON_TIMEOUT)
def retry_payouts() -> dict:
    """Cron: execute payouts whose window has passed; retry transfers Stripe could not take."""
    done = retry_due(after_each=db.session.commit)
    db.session.commit()
    return done


@job(queue="money", timeout=CRON_TIMEOUT)
def reconcile_transfers() -> list[str]:
    """Cron: compare Stripe's transfers per payout transfer group with the paid shares; report differences."""
    report = reconcile()
    db.session.commit()
    return report


@job(queue="default", timeout=CRON_TIMEOUT)
def lapse_claims() -> dict:
    """Cron: warn implementors whose claim's deadline is near; lapse claims past it with no linked change."""
    warned = warn_lapsing()
    db.session.commit()
    lapsed = lapse_due()
    db.session.commit()
    return {"warned": warned, "lapsed": lapsed}


@job(queue="money", timeout=CRON_TIMEOUT)
def end_pools() -> list[int]:
    """Cron: matching pools whose window is over end (a quadratic-funding
    round is divided first, once: its execution is keyed by the pool and
    marked, so a second run moves nothing); what they hold is then due back
    to their sponsors: a card-funded pool's (and a cancelled one's) by a
    Stripe refund of what it holds, each refund row committed before Stripe
    is asked and retried with its own key when Stripe could not be reached.
    Returns the pool ids ended."""
    ended = end_due_pools()
    db.session.commit()
    return_due_pools(after_each=db.session.commit)
    db.session.commit()
    return ended


@job(queue="money", timeout=CRON_TIMEOUT)
def return_expired_allotments() -> list[int]:
    """Cron: project funds' allotments past their expiry (default six months)
    whose item is unsolved and has no approved or submitted claim go back to
    their fund, never to the subscribers. Each return is keyed by the
    allotment id, so a second run moves nothing. Returns the allotment ids."""
    returned = return_expired_allotments_due()
    db.session.commit()
    return returned
