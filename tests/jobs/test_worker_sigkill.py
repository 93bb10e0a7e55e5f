"""A real RQ worker killed with SIGKILL in the middle of a job loses nothing
and doubles nothing (issue 23), on real PostgreSQL and real Redis.

Each test starts ``flask rq worker`` as its own process group (the worker and
the work-horse it forks per job), kills the group with SIGKILL while a job is
half done, then runs what recovers in production: RQ's handling of abandoned
jobs (``StartedJobRegistry.cleanup``, which a worker's maintenance runs once
the job's timeout has passed: a job with retries left is retried, one without
goes to the failed registry) and the cron passes that queue again what the
database says is left to do. It ends with the work done exactly once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from tests.conftest import GITHUB_SECRET, ROOT
from tests.races import race_database_app
from tests.webhooks.helpers import payload, post_github

pytestmark = pytest.mark.postgres

JOB_TIMEOUT_PASSED = 3600  # seconds added to "now" when RQ looks for abandoned jobs


def _wait(predicate, seconds: float, what: str, log=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {seconds} s\n{log()[-4000:]}")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    found = []
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return found
    for child in children:
        found += [child, *_descendants(child)]
    return found


class Worker:
    """``flask rq worker QUEUES`` in its own process group, on the test's database and Redis."""

    def __init__(self, app, tmp_path, *queues: str, burst: bool = False, scheduler: bool = False, **env: str):
        self.killed: list[int] = []
        self.log_path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("DATABASE_URL", "REDIS_URL", "MAIL_", "STRIPE_", "FLASK_", "APP_ENV"))}
        environment.update(FLASK_APP=str(ROOT / "wsgi.py"), PYTHONPATH=str(ROOT), APP_ENV="development",
                           SECRET_KEY="sigkill-test", DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
                           REDIS_URL=app.config["REDIS_URL"], GITHUB_WEBHOOK_SECRET=GITHUB_SECRET,
                           MAIL_OUTBOX_DIR=str(tmp_path / "mail"), **env)
        command = [sys.executable, "-m", "flask", "rq", "worker", *queues]
        command += ["--burst"] if burst else []
        command += [] if scheduler else ["--no-scheduler"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=self.log_path.open("w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """SIGKILL to the worker and its work-horse at once, as when the machine
        or the container dies (RQ's work-horse runs in a process group of its own)."""
        self.killed = _descendants(self.process.pid)
        for pid in self.killed:
            os.kill(pid, signal.SIGKILL)
        os.killpg(self.process.pid, signal.SIGKILL)

    def all_gone(self) -> bool:
        """Whether every process that :meth:`kill` killed (the work-horse among them) is gone."""
        def alive(pid: int) -> bool:
            try:
                return "zombie" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
            except (OSError, IndexError):
                return False
        return bool(self.killed) and not any(alive(pid) for pid in self.killed)

    def wait(self, seconds: float = 120) -> int:
        return self.process.wait(timeout=seconds)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def crash_app(database_url, redis_url):
    """An app on its own migrated database (commits are real) whose jobs go to real Redis (emptied)."""
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_sigkill") as app:
        app.config["REDIS_URL"] = None  # set by each test once its rows are in place
        yield app
    connection.flushdb()


def _use_redis(app, redis_url: str):
    """From now on the app enqueues on ``redis_url``; returns ``name -> Queue``."""
    app.config["REDIS_URL"] = redis_url
    app.extensions.pop("redis", None)
    return lambda name: Queue(name, connection=redis.Redis.from_url(redis_url))


def _item_in_a_repository() -> int:
    """Codertocat/Hello-World with its issue #1 (as the recorded payloads have them), committed."""
    from marketplace.backlog.models import BacklogItem, ItemState
    from marketplace.extensions import db
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.forges.urls import path_key
    from marketplace.projects.models import MemberProject, RegistryStatus
    from marketplace.timeutil import utcnow

    now = utcnow()
    project = MemberProject(slug="hello", name="Hello", registry_status=RegistryStatus.active, admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="Codertocat",
                      name="Hello-World", path_key=path_key("Codertocat", "Hello-World"), forge_id=186853002,
                      url="https://github.com/Codertocat/Hello-World")
    item = BacklogItem(repository=repo, forge_host="github.com", forge_id=444500041, number=1,
                       title="Spelling error in the README file", state=ItemState.open,
                       html_url="https://github.com/Codertocat/Hello-World/issues/1",
                       forge_created_at=now - timedelta(days=2), forge_updated_at=now - timedelta(days=1))
    db.session.add_all([project, repo, item])
    db.session.commit()
    return item.id


def _backend_waiting_on_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")))


def test_a_worker_killed_during_a_webhook_job_loses_nothing_and_processes_it_once(crash_app, redis_url,
                                                                                 tmp_path):
    from marketplace.backlog.models import BacklogItem
    from marketplace.extensions import db
    from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
    from marketplace.webhooks.service import requeue_pending

    with crash_app.app_context():
        item_id = _item_in_a_repository()
    queue = _use_redis(crash_app, redis_url)
    body = payload("github/webhooks/issues/edited.json")
    body["issue"]["title"] = "Spelling errors in the README file and the guide"
    body["issue"]["updated_at"] = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    delivery_key = str(uuid.uuid4())
    stored = post_github(crash_app.test_client(), "issues", json.dumps(body).encode(), delivery_id=delivery_key)
    assert stored.status_code in (200, 202)
    [job] = queue("webhooks").get_jobs()
    assert job.func_name == "jobs.webhooks.process_delivery"

    engine = sa.create_engine(crash_app.config["SQLALCHEMY_DATABASE_URI"])
    holder = engine.connect()
    worker = None
    try:
        # The item's row lock, held here: the job stops half-way, after it has
        # locked the delivery and resolved the repository, inside its transaction.
        holder.execute(sa.text("SELECT id FROM backlog_item WHERE id = :id FOR UPDATE"), {"id": item_id})
        worker = Worker(crash_app, tmp_path, "webhooks")
        _wait(lambda: _backend_waiting_on_a_lock(engine), 60, "the webhook job waiting inside its transaction",
              worker.log)
        assert StartedJobRegistry(queue=queue("webhooks")).get_job_ids() != []
        worker.kill()
        assert worker.wait() == -signal.SIGKILL
        _wait(worker.all_gone, 10, "the work-horse gone with its worker")
    finally:
        holder.rollback()
        holder.close()
        if worker is not None:
            worker.stop()
    # The dead worker's transaction never committed: PostgreSQL drops it once the backend sees its client gone.
    _wait(lambda: not _backend_waiting_on_a_lock(engine), 30, "the killed job's transaction ending")

    with crash_app.app_context():
        delivery = db.session.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_key))
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.pending, 0)
        assert db.session.get(BacklogItem, item_id).title == "Spelling error in the README file"
        delivery_id = delivery.id
        db.session.remove()

    # Recovery 1: RQ finds the job abandoned once its timeout has passed; it has retries left, so it is retried.
    started = StartedJobRegistry(queue=queue("webhooks"))
    started.cleanup(timestamp=time.time() + JOB_TIMEOUT_PASSED)
    assert started.get_job_ids() == []
    assert queue("webhooks").scheduled_job_registry.get_job_ids() == [job.id]  # after its 10 s retry interval
    # Recovery 2: the cron pass queues again every delivery still pending after five minutes.
    with crash_app.app_context():
        db.session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                           .values(received_at=WebhookDelivery.received_at - timedelta(minutes=10)))
        assert requeue_pending() == 1
        db.session.commit()
    # A fresh worker (with RQ's scheduler, which moves the retry into the queue when due) runs both.
    worker = Worker(crash_app, tmp_path, "webhooks", scheduler=True)
    try:
        finished = FinishedJobRegistry(queue=queue("webhooks"))
        _wait(lambda: len(finished.get_job_ids()) == 2, 90, "the retried and the re-queued job finishing",
              worker.log)
    finally:
        worker.stop()
    assert FailedJobRegistry(queue=queue("webhooks")).get_job_ids() == []
    with crash_app.app_context():
        delivery = db.session.get(WebhookDelivery, delivery_id)
        # Processed once: the second job found it processed under its row lock and left it alone.
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.processed, 1)
        assert db.session.get(BacklogItem, item_id).title == "Spelling errors in the README file and the guide"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1
        db.session.remove()
    engine.dispose()


def test_a_worker_killed_during_a_payout_transfer_pays_once_after_recovery(crash_app, redis_url, tmp_path):
    """SIGKILL once the (local) Stripe has made the transfer and before its
    answer reaches the job: the transfer is made, our commit is not. RQ moves
    the abandoned job (no retries) to the failed registry; the payouts cron
    pass finds the transfer in the payout's transfer group and records it."""
    from marketplace.extensions import db
    from marketplace.ledger.check import check
    from marketplace.ledger.models import AccountKind
    from marketplace.payouts.models import PayoutShare, ShareState
    from marketplace.standins.stripe import LocalStripe
    from marketplace.tasks import enqueue
    from tests.payouts.helpers import balance
    from tests.payouts.test_transfer_crash import _executed_share_in_a_real_database

    server = LocalStripe()
    crash_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    stripe_env = {"STRIPE_API_KEY": "sk_test_local", "STRIPE_API_BASE": server.url}
    worker = None
    try:
        with crash_app.app_context():
            share_id, account_id = _executed_share_in_a_real_database(server)
            db.session.remove()
        queue = _use_redis(crash_app, redis_url)
        with crash_app.app_context():
            enqueue("jobs.money.transfer_share", share_id)
            db.session.commit()
        [job] = queue("money").get_jobs()
        worker = Worker(crash_app, tmp_path, "money", "notifications", **stripe_env)
        server.on_transfer_made = lambda _transfer: worker.kill()
        assert worker.wait() == -signal.SIGKILL, worker.log()
        _wait(worker.all_gone, 10, "the work-horse gone with its worker")
        server.on_transfer_made = None
        assert len(server.transfers) == 1
        with crash_app.app_context():
            share = db.session.get(PayoutShare, share_id)
            assert (share.state, share.stripe_transfer_id) == (ShareState.transferring, None)
            assert share.transfer_in_flight_at is not None
            db.session.remove()

        # Recovery 1: the abandoned job has no retries: RQ moves it to the failed registry.
        StartedJobRegistry(queue=queue("money")).cleanup(timestamp=time.time() + JOB_TIMEOUT_PASSED)
        assert FailedJobRegistry(queue=queue("money")).get_job_ids() == [job.id]
        # Recovery 2: the payouts cron pass (every 10 minutes), run by a worker: one lookup, no new transfer.
        server.requests.clear()
        with crash_app.app_context():
            enqueue("jobs.money.retry_payouts")
            enqueue("jobs.money.retry_payouts")  # twice, as two cron ticks would
            db.session.commit()
        worker = Worker(crash_app, tmp_path, "money", "notifications", burst=True, **stripe_env)
        assert worker.wait() == 0, worker.log()
        assert [r[:2] for r in server.requests if r[0] == "POST" and r[1] == "/v1/transfers"] == []
        [made] = server.transfers.values()
        assert (made["amount"], made["destination"]) == (9000, account_id)
        with crash_app.app_context():
            share = db.session.get(PayoutShare, share_id)
            assert (share.state, share.stripe_transfer_id, share.transfer_in_flight_at) == (
                ShareState.paid, made["id"], None)
            assert balance(AccountKind.payouts_paid) == 9000
            assert check() == []
            db.session.remove()
    finally:
        server.on_transfer_made = None
        if worker is not None:
            worker.stop()
        server.stop()
