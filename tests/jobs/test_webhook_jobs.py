"""Webhook jobs (jobs/webhooks.py) on real Redis: a job that raises is recorded
``failed`` and retried by RQ; the cron pass queues again the deliveries whose
job was lost."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.registry import ScheduledJobRegistry
from rq.utils import import_attribute
from sqlalchemy import select

from jobs.cli import CRON_CONFIG
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_repository
from tests.payments.fake_stripe import FakeStripe
from tests.payments.test_stripe_events import a_pledge, post_event
from tests.webhooks.helpers import payload, post_github


def delivery(session, delivery_id: str) -> WebhookDelivery:
    row = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))
    session.refresh(row)
    return row


def work(app, rq_redis, queue: str = "webhooks") -> None:
    with app.app_context():
        SimpleWorker([Queue(queue, connection=rq_redis)], connection=rq_redis).work(burst=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def stripe_down_then_up(app):
    """Stripe's API configured but unreachable; ``.up()`` starts the local stand-in there."""
    saved = {k: app.config.get(k) for k in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_TIMEOUT_SECONDS")}
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=f"http://127.0.0.1:{closed_port()}",
                      STRIPE_TIMEOUT_SECONDS=1)

    class Switch:
        server = None

        def up(self) -> FakeStripe:
            self.server = FakeStripe()
            app.config["STRIPE_API_BASE"] = self.server.url
            return self.server

    switch = Switch()
    yield switch
    app.config.update(saved)
    if switch.server is not None:
        switch.server.stop()


def test_a_webhook_job_that_raises_is_recorded_failed_and_retried_by_rq_until_it_applies(
        app, client, session, rq_redis, stripe_down_then_up):
    pledge = a_pledge(session, 5000)
    intent = f"pi_test_{pledge.id}"
    # A refund whose charge does not list its refunds: Stripe must be asked, and it cannot be reached.
    charge = {"id": f"ch_test_{pledge.id}", "object": "charge", "amount": 5000, "currency": "usd", "paid": True,
              "status": "succeeded", "payment_intent": intent, "metadata": {"pledge_id": str(pledge.id)},
              "amount_refunded": 2000, "refunds": {"object": "list", "data": [], "has_more": True}}
    assert post_event(client, "charge.refunded", charge, "evt_refund_down").status_code == 202
    queue = Queue("webhooks", connection=rq_redis)
    assert queue.jobs[0].retries_left == 3
    work(app, rq_redis)
    row = delivery(session, "evt_refund_down")
    assert (row.status, row.attempts) == (DeliveryStatus.failed, 1)
    assert row.outcome.startswith("PaymentsUnavailable: ")
    # Nothing the failed attempt did is kept: the pledge is not held half-refunded.
    assert session.get(Pledge, pledge.id).state is PledgeState.pending
    # RQ keeps the job for its retry (10 s later), one retry spent.
    registry = ScheduledJobRegistry("webhooks", connection=rq_redis)
    [job_id] = registry.get_job_ids()
    job = queue.fetch_job(job_id)
    assert job.retries_left == 2
    # Stripe answers again; the retry comes due and applies the event.
    stripe = stripe_down_then_up.up()
    stripe.refunds["re_down_1"] = {"id": "re_down_1", "object": "refund", "amount": 2000, "currency": "usd",
                                   "status": "succeeded", "payment_intent": intent, "created": 1}
    registry.remove(job)
    queue.enqueue_job(job)
    work(app, rq_redis)
    row = delivery(session, "evt_refund_down")
    assert (row.status, row.attempts) == (DeliveryStatus.processed, 2)
    pledge = session.get(Pledge, pledge.id)
    session.refresh(pledge)
    assert (pledge.state, pledge.refunded_minor) == (PledgeState.partially_refunded, 2000)


def cron_job(name: str):
    """The function the cron schedule runs under ``name`` (jobs/cron_config.py)."""
    scheduler = CronScheduler(connection=None)
    scheduler.load_config_from_file(CRON_CONFIG)
    [job] = [job for job in scheduler.get_jobs() if job.name == name]
    return job.func or import_attribute(job.func_name)


def test_the_cron_pass_queues_again_a_delivery_whose_job_was_lost(app, client, session, rq_redis):
    make_repository("Codertocat", "Hello-World")
    post_github(client, "issues", payload("github/webhooks/issues/opened.json"), "lost-1")
    post_github(client, "issues", payload("github/webhooks/issues/edited.json"), "recent-1")
    queue = Queue("webhooks", connection=rq_redis)
    assert queue.count == 2
    rq_redis.flushdb()  # Redis lost both jobs
    lost, recent = delivery(session, "lost-1"), delivery(session, "recent-1")
    lost.received_at -= timedelta(minutes=5, seconds=1)
    session.commit()
    requeue = cron_job("requeue-deliveries")
    with app.app_context():
        assert requeue() == 1  # only the one pending for more than five minutes
    assert [job.args[0] for job in queue.jobs] == [lost.id]
    work(app, rq_redis)
    assert delivery(session, "lost-1").status is DeliveryStatus.processed
    assert delivery(session, "recent-1").status is DeliveryStatus.pending
    # Processed deliveries are not queued again.
    recent.received_at -= timedelta(minutes=6)
    session.commit()
    with app.app_context():
        assert requeue() == 1
    assert [job.args[0] for job in queue.jobs] == [recent.id]
