"""Two deliveries with the same id at the same moment, on real PostgreSQL."""
import json
import threading

import pytest
from sqlalchemy import delete, func, select

from marketplace.extensions import db
from marketplace.webhooks.models import WebhookDelivery
from tests.webhooks.helpers import payload, post_github


@pytest.mark.postgres
def test_simultaneous_redeliveries_store_one_delivery(app):
    """Not in the rolled-back test transaction: each request commits for real,
    as two gunicorn workers would, and the unique constraint decides."""
    body = json.dumps(payload("github/webhooks/issues/opened.json")).encode()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post():
        client = app.test_client()
        barrier.wait()
        with app.app_context():
            statuses.append(post_github(client, "issue_comment", body, "race-delivery-1").status_code)

    try:
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200, 202]
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.delivery_id == "race-delivery-1")) == 1
    finally:
        with app.app_context():
            db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.delivery_id == "race-delivery-1"))
            db.session.commit()
            db.session.remove()
