"""duplicate deliveries on real PostgreSQL sessions, and a lost enqueue.

The concurrency test commits for real (no rollback fixture) and deletes its
rows afterwards.
"""
import json
import threading
import uuid

import pytest
from sqlalchemy import delete, func, select

from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.webhooks.helpers import payload, post_github, sign


@pytest.mark.postgres
def test_same_delivery_id_posted_concurrently_is_stored_once(app):
    from marketplace.extensions import db

    body = json.dumps(payload("github/webhooks/ping/ping.json")).encode()
    ids = [f"review-concurrent-{uuid.uuid4()}" for _ in range(10)]
    try:
        for delivery_id in ids:
            barrier = threading.Barrier(2)
            codes = []

            def post(barrier=barrier, codes=codes, delivery_id=delivery_id):
                client = app.test_client()
                barrier.wait()
                codes.append(client.post("/webhooks/github", data=body, headers={
                    "X-GitHub-Event": "ping", "X-GitHub-Delivery": delivery_id,
                    "X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}).status_code)

            threads = [threading.Thread(target=post) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(codes) == [200, 202], codes
        with app.app_context():
            rows = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.delivery_id.in_(ids)))
            assert rows == len(ids)
    finally:
        with app.app_context():
            db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.delivery_id.in_(ids)))
            db.session.commit()


@pytest.mark.postgres
def test_a_delivery_whose_enqueue_failed_is_processed_on_redelivery(app):
    """Redis unreachable at enqueue time: the delivery is committed, the client
    gets a 500, and the forge's redelivery (same id) is answered 200
    'duplicate' while the delivery stays pending forever (nothing sweeps it).
    Real commits; rows deleted afterwards."""
    from marketplace.extensions import db

    body = payload("github/webhooks/ping/ping.json")
    delivery_id = f"review-lost-{uuid.uuid4()}"
    client = app.test_client()
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    app.extensions.pop("redis", None)
    app.testing = False
    try:
        first = post_github(client, "ping", body, delivery_id).status_code
    finally:
        app.testing = True
        app.config["REDIS_URL"] = None
        app.extensions.pop("redis", None)
    try:
        # GitHub redelivers with the same id once things are back (Redis unset: in-process).
        second = post_github(client, "ping", body, delivery_id).status_code
        with app.app_context():
            status = db.session.scalar(select(WebhookDelivery.status).where(
                WebhookDelivery.delivery_id == delivery_id))
        observed = (first, second, status)
        assert first != 500 and status is DeliveryStatus.processed, observed
    finally:
        with app.app_context():
            db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))
            db.session.commit()
