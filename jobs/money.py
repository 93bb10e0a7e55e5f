"""Money jobs (queue ``money``)."""
from marketplace.extensions import db
from marketplace.pledges.service import expire_unpaid, refund_expired, refund_not_planned


def refund_expired_pledges() -> list[int]:
    """Cron: refund every held pledge whose expiry passed while its item is unsolved.

    Each refund is keyed by the pledge id, so a second run refunds nothing more.
    """
    refunded = refund_expired()
    db.session.commit()
    return refunded


def refund_not_planned_items() -> list[int]:
    """Cron: refund what is held for items closed without the work (not
    planned, duplicate, moved, unknown) after the policy window, for items
    deleted on the forge, and for items the forge kept private past the
    window (their claims and open payouts end first)."""
    from marketplace.backlog.ending import end_withheld

    end_withheld()
    db.session.commit()
    refunded = refund_not_planned()
    db.session.commit()
    return refunded


def cancel_unpaid_pledges() -> list[int]:
    """Cron: cancel pledges still unpaid after ``PLEDGE_UNPAID_CARD_HOURS`` /
    ``PLEDGE_UNPAID_TRANSFER_DAYS`` (a card pledge's Checkout is expired at Stripe first)."""
    cancelled = expire_unpaid()
    db.session.commit()
    return cancelled


def execute_payout(payout_id: int) -> bool:
    """Execute one approved payout once its dispute window has passed (a no-op otherwise)."""
    from marketplace.payouts.service import execute

    done = execute(payout_id)
    db.session.commit()
    return done


def transfer_share(share_id: int) -> bool:
    """Pay one share by Stripe transfer; the same idempotency key on every retry.

    Two commits: the attempt in flight first, on its own, then the outcome; a
    worker killed in between leaves the marker, and the retry looks for the
    transfer before making one.
    """
    from marketplace.payouts.service import begin_transfer, transfer
    from marketplace.timeutil import utcnow

    now = utcnow()
    if not begin_transfer(share_id, now):
        db.session.commit()
        return False
    db.session.commit()
    paid = transfer(share_id, now)
    db.session.commit()
    return paid


def retry_payouts() -> dict:
    """Cron: execute payouts whose window has passed; retry transfers Stripe could not take."""
    from marketplace.payouts.service import retry_due

    done = retry_due(after_each=db.session.commit)
    db.session.commit()
    return done


def reconcile_transfers() -> list[str]:
    """Cron: compare Stripe's transfers per payout transfer group with the paid shares; report differences."""
    from marketplace.payouts.service import reconcile_transfers as reconcile

    report = reconcile()
    db.session.commit()
    return report


def lapse_claims() -> dict:
    """Cron: warn implementors whose claim's deadline is near; lapse claims past it with no linked change."""
    from marketplace.claims.service import lapse_due, warn_lapsing

    warned = warn_lapsing()
    db.session.commit()
    lapsed = lapse_due()
    db.session.commit()
    return {"warned": warned, "lapsed": lapsed}
