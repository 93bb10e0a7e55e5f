"""Webhook jobs (queue ``webhooks``)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from marketplace.extensions import db
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus, NotMatchedYet, WebhookDelivery
from marketplace.webhooks.service import enqueue_processing, handle


def process_delivery(delivery_id: int, replay: bool = False) -> str:
    """Process one stored delivery; returns its status.

    Idempotent: a delivery already processed, ignored or malformed is left alone unless
    ``replay`` (an admin's replay). On an error the delivery is marked
    ``failed`` with the error in a separate commit and the error is raised, so
    RQ retries it and the admin page shows it. An event whose object cannot be
    matched yet (Stripe's events come in any order) is marked ``waiting`` the
    same way: RQ retries it with backoff, then :func:`retry_waiting_deliveries`.
    """
    # The row lock serialises two jobs for one delivery (a redelivery re-queued
    # it while the first job ran): the second sees it processed.
    delivery = db.session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise LookupError(f"no webhook delivery {delivery_id}")
    if delivery.status in (DeliveryStatus.processed, DeliveryStatus.ignored, DeliveryStatus.malformed) \
            and not replay:
        return delivery.status.value
    try:
        status, outcome = handle(delivery)
    except NotMatchedYet as exc:
        _record_unfinished(delivery_id, DeliveryStatus.waiting, f"waiting: {exc}")
        raise
    except Exception as exc:
        _record_unfinished(delivery_id, DeliveryStatus.failed, f"{type(exc).__name__}: {exc}")
        raise
    delivery.status = status
    delivery.outcome = outcome
    delivery.attempts += 1
    delivery.processed_at = utcnow()
    db.session.commit()
    return status.value


def _record_unfinished(delivery_id: int, status: DeliveryStatus, outcome: str) -> None:
    """Roll back what the handler did, then record the attempt on the delivery
    (``waiting`` or ``failed``, with its outcome) in its own commit, so that
    RQ's retry and the admin page see it."""
    db.session.rollback()
    delivery = db.session.get(WebhookDelivery, delivery_id)
    delivery.status = status
    delivery.attempts += 1
    delivery.outcome = outcome[:2000]
    db.session.commit()


STALE_AFTER = timedelta(minutes=5)


def requeue_pending_deliveries() -> int:
    """Cron: queue again every delivery still pending five minutes after it
    arrived (its job was lost, e.g. Redis was down). Returns the count."""
    stale = db.session.scalars(
        select(WebhookDelivery.id).where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.received_at < utcnow() - STALE_AFTER,
        )
    ).all()
    for delivery_id in stale:
        enqueue_processing(delivery_id)
    db.session.commit()
    return len(stale)


def retry_waiting_deliveries() -> dict:
    """Cron: try again every delivery still ``waiting`` for its object to be
    matched (RQ's retries are spent). One waiting longer than
    ``WEBHOOK_WAITING_DAYS`` becomes ``failed`` for a person to look at (the
    admin's count of failed deliveries), never dropped. Returns the counts."""
    from flask import current_app

    cutoff = utcnow() - timedelta(days=current_app.config.get("WEBHOOK_WAITING_DAYS", 3))
    waiting = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.status == DeliveryStatus.waiting).order_by(WebhookDelivery.id)).all()
    retried = given_up = 0
    for delivery in waiting:
        if delivery.received_at < cutoff:
            delivery.status = DeliveryStatus.failed
            delivery.outcome = f"never matched in {current_app.config.get('WEBHOOK_WAITING_DAYS', 3)} days; " \
                               f"check it, then replay ({delivery.outcome})"[:2000]
            given_up += 1
        else:
            enqueue_processing(delivery.id)
            retried += 1
    db.session.commit()
    return {"retried": retried, "failed": given_up}
