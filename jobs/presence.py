"""Forge presence jobs (issue 22): the living comment and label of an item, the
reply to an unlinked commenter, and the cron pass that resumes rate-limited work.

Each forge write happens in these jobs, never in a request: they take ids,
reload the rows, and are safe to run twice (see :mod:`marketplace.presence.service`).
"""
from __future__ import annotations

from marketplace.extensions import db
from marketplace.presence.service import refresh_item as refresh
from marketplace.presence.service import reply_unlinked as reply
from marketplace.presence.service import resume_due
from marketplace.tasks import job


@job(queue="default", timeout=120, retries=3, retry_intervals=(30, 120, 600))
def refresh_item(item_id: int) -> str:
    """Bring one item's living comment and label up to date; returns what happened.
    An outage raises, and RQ retries (the comment's marker keeps a retry from posting twice)."""
    outcome = refresh(item_id)
    db.session.commit()
    return outcome


@job(queue="default", timeout=120, retries=3, retry_intervals=(30, 120, 600))
def reply_unlinked(command_id: int) -> str:
    """Post the one reply that tells an unlinked commenter how to link their account."""
    outcome = reply(command_id)
    db.session.commit()
    return outcome


@job(queue="default", timeout=300)
def resume_presence() -> int:
    """Cron: queue what a rate limit deferred, once its wait is over; returns the count."""
    count = resume_due()
    db.session.commit()
    return count
