"""Webhook intake does the least that keeps a delivery safe (issue 15): verify,
one INSERT, enqueue after the commit; a redelivery reads the stored row."""
from sqlalchemy import event, func, select

from marketplace.extensions import db
from marketplace.webhooks import service
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.webhooks.helpers import post_github


def test_intake_is_one_insert_and_a_redelivery_one_more_read(client, session, monkeypatch):
    queued = []
    monkeypatch.setattr(service, "enqueue", lambda name, *args, **kwargs: queued.append((name, args)))
    seen: list[str] = []
    savepoints: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        # The test's transaction runs the view's work in one savepoint (its commit releases it).
        (savepoints if statement.startswith("SAVEPOINT") else seen).append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        first = post_github(client, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, "intake-1")
        statements_first, savepoints_first = list(seen), list(savepoints)
        seen.clear()
        again = post_github(client, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, "intake-1")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    assert len(savepoints_first) == 1  # the test's own: the intake opens none
    [insert, _release] = statements_first  # no read: a redelivery racing it is the database's to settle
    assert insert.startswith("INSERT INTO webhook_delivery") and "ON CONFLICT" in insert.upper()
    assert _release.startswith("RELEASE SAVEPOINT")
    assert len(seen) == 3 and seen[0].startswith("INSERT") and seen[1].startswith("SELECT")
    stored = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "intake-1"))
    assert first.get_json()["id"] == stored.id and stored.status is DeliveryStatus.pending
    assert (stored.source, stored.event, stored.attempts) == ("github", "ping", 0)
    assert stored.received_at is not None
    # Still pending (no job ran here): the redelivery queues it again, as before.
    assert queued == [("jobs.webhooks.process_delivery", (stored.id, False))] * 2
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)
                          .where(WebhookDelivery.delivery_id == "intake-1")) == 1
