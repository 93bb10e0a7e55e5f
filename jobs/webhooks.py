"""Webhook jobs (queue ``webhooks``)."""
from __future__ import annotations

from marketplace.extensions import db
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from marketplace.webhooks.service import handle


def process_delivery(delivery_id: int, replay: bool = False) -> str:
    """Process one stored delivery; returns its status.

    Idempotent: a delivery already processed or ignored is left alone unless
    ``replay`` (an admin's replay). On an error the delivery is marked
    ``failed`` with the error in a separate commit and the error is raised, so
    RQ retries it and the admin page shows it.
    """
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise LookupError(f"no webhook delivery {delivery_id}")
    if delivery.status in (DeliveryStatus.processed, DeliveryStatus.ignored) and not replay:
        return delivery.status.value
    try:
        status, outcome = handle(delivery)
    except Exception as exc:
        db.session.rollback()
        delivery = db.session.get(WebhookDelivery, delivery_id)
        delivery.status = DeliveryStatus.failed
        delivery.attempts += 1
        delivery.outcome = f"{type(exc).__name__}: {exc}"[:2000]
        db.session.commit()
        raise
    delivery.status = status
    delivery.outcome = outcome
    delivery.attempts += 1
    delivery.processed_at = utcnow()
    db.session.commit()
    return status.value
