"""Money jobs (queue ``money``)."""
from marketplace.extensions import db
from marketplace.pledges.service import refund_expired, refund_not_planned


def refund_expired_pledges() -> list[int]:
    """Cron: refund every held pledge whose expiry passed while its item is unsolved.

    Each refund is keyed by the pledge id, so a second run refunds nothing more.
    """
    refunded = refund_expired()
    db.session.commit()
    return refunded


def refund_not_planned_items() -> list[int]:
    """Cron: refund what is held for items closed as not planned, after the policy window."""
    refunded = refund_not_planned()
    db.session.commit()
    return refunded
