"""Webhook jobs (queue ``webhooks``): thin wrappers that call the webhooks service and commit."""
from __future__ import annotations

from marketplace.extensions import db
from marketplace.tasks import job
from marketplace.webhooks.models import DeliveryStatus, NotMatchedYet
from marketplace.webhooks.service import (
    DeliveryMissing,
    process,
    record_unfinished,
    requeue_pending,
    retry_waiting,
)


@job(queue="webhooks", timeout=120, retries=3, retry_intervals=(10, 60, 300))
def process_delivery(delivery_id: int, replay: bool = False) -> str:
    """Process one stored delivery; returns its status (see
    :func:`marketplace.webhooks.service.process`).

    On an error the handler's work is rolled back, the delivery is marked
    ``failed`` with the error in a separate commit and the error is raised, so
    RQ retries it and the admin page shows it. An event whose object cannot be
    matched yet (Stripe's events come in any order) is marked ``waiting`` the
    same way: RQ retries it with backoff, then :func:`retry_waiting_deliveries`.
    """
    try:
        status = process(delivery_id, replay=replay)
    except NotMatchedYet as exc:
        _record_unfinished(delivery_id, DeliveryStatus.waiting, f"waiting: {exc}")
        raise
    except DeliveryMissing:
        raise  # no such delivery: nothing to record
    except Exception as exc:
        _record_unfinished(delivery_id, DeliveryStatus.failed, f"{type(exc).__name__}: {exc}")
        raise
    db.session.commit()
    return status


def _record_unfinished(delivery_id: int, status: DeliveryStatus, outcome: str) -> None:
    """Roll back what the handler did, then record the attempt in its own commit."""
    db.session.rollback()
    record_unfinished(delivery_id, status, outcome)
    db.session.commit()


@job(queue="webhooks", timeout=300)
def requeue_pending_deliveries() -> int:
    """Cron: queue again every delivery still pending five minutes after it
    arrived (its job was lost, e.g. Redis was down). Returns the count."""
    count = requeue_pending()
    db.session.commit()
    return count


@job(queue="webhooks", timeout=300)
def retry_waiting_deliveries() -> dict:
    """Cron: try again every delivery still ``waiting`` for its object (see
    :func:`marketplace.webhooks.service.retry_waiting`). Returns the counts."""
    counts = retry_waiting()
    db.session.commit()
    return counts
