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


# --- project funds ---------------------------------------------------------------------

def _waiting_backend(engine) -> tuple[str, set[str]]:
    """The one backend waiting on a lock: its statement and the tables its open
    transaction has written (inserted, updated or deleted rows in)."""
    with engine.connect() as conn:
        pid, query = conn.execute(sa.text(
            "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).one()
        written = set(conn.scalars(sa.text(
            "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = :pid AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' "
            "AND c.relkind = 'r'"), {"pid": pid}))
    return query, written


def _fund_of_a_project():
    """A member project with a maintainer, an open item and a USD fund (flushed): (fund, item, maintainer)."""
    from marketplace.accounts.models import User
    from marketplace.backlog.models import BacklogItem, ItemState
    from marketplace.extensions import db
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.funds import service as funds
    from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus
    from marketplace.timeutil import utcnow

    now = utcnow()
    project = MemberProject(slug="fundcrash", name="Fund crash", registry_status=RegistryStatus.active,
                            fee_rate_bps=1000, admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="fundcrash",
                      name="fundcrash", path_key="fundcrash/fundcrash", url="https://github.com/fundcrash/fundcrash")
    item = BacklogItem(repository=repo, forge_host="github.com", forge_id=2, number=2, title="Fund crash",
                       state=ItemState.open, html_url="https://github.com/fundcrash/fundcrash/issues/2",
                       forge_created_at=now, forge_updated_at=now)
    maintainer = User(display_name="maintainer", email_verified_at=now)
    maintainer.set_email("maintainer@example.org")
    db.session.add_all([project, repo, item, maintainer])
    db.session.flush()
    db.session.add(ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"))
    return funds.fund_of(project, "USD"), item, maintainer


def _subscriber(email: str):
    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.timeutil import utcnow

    person = User(display_name=email.split("@")[0], email_verified_at=utcnow())
    person.set_email(email)
    db.session.add(person)
    db.session.flush()
    return person

def _kill_while_held(app, tmp_path, queue_name: str, table: str, row_id: int, written: set[str], what: str) -> None:
    """Start a worker on ``queue_name`` while this test holds ``table``'s row
    ``row_id`` FOR NO KEY UPDATE (it can still be referenced, not updated), wait
    until the job blocks on its UPDATE of that row having written at least the
    tables ``written``, SIGKILL the worker's process group, release the row and
    wait until the killed transaction has ended."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    holder = engine.connect()
    worker = None
    try:
        holder.execute(sa.text(f"SELECT id FROM {table} WHERE id = :id FOR NO KEY UPDATE"), {"id": row_id})
        worker = Worker(app, tmp_path, queue_name)
        _wait(lambda: _backend_waiting_on_a_lock(engine), 60, f"{what} waiting inside its transaction", worker.log)
        statement, seen = _waiting_backend(engine)
        assert statement.startswith(f"UPDATE {table}"), statement
        assert written <= seen, seen
        worker.kill()
        assert worker.wait() == -signal.SIGKILL
        _wait(worker.all_gone, 10, "the work-horse gone with its worker")
    finally:
        holder.rollback()
        holder.close()
        if worker is not None:
            worker.stop()
    _wait(lambda: not _backend_waiting_on_a_lock(engine), 30, "the killed job's transaction ending")
    engine.dispose()



def test_a_worker_killed_during_a_fund_invoice_job_puts_the_invoice_in_the_fund_once(crash_app, redis_url,
                                                                                    tmp_path):
    """SIGKILL while the job of a subscription's first ``invoice.paid`` has
    flushed the receipt and its ledger transaction and waits to mark the
    subscription active (the test holds the subscription's row): nothing is
    committed. RQ retries the abandoned job and the cron pass queues the
    pending delivery again; the fund holds the invoice's amount once."""
    from marketplace.extensions import db
    from marketplace.funds import rails
    from marketplace.funds import service as funds
    from marketplace.funds.models import (
        FundReceipt,
        FundSubscription,
        ProjectFund,
        SubscriptionRail,
        SubscriptionState,
    )
    from marketplace.ledger.check import check
    from marketplace.ledger.models import LedgerTransaction
    from marketplace.standins.stripe import LocalStripe
    from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
    from marketplace.webhooks.service import requeue_pending
    from tests.payments.test_stripe_events import post_event

    server = LocalStripe()
    crash_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    worker = None
    try:
        with crash_app.app_context():
            fund, _item, _maintainer = _fund_of_a_project()
            sub = funds.subscribe(fund, _subscriber("ada@example.org"), 2500, rail=SubscriptionRail.card)
            rails.start_checkout(sub, success_url="http://localhost/thanks", cancel_url="http://localhost/back")
            db.session.commit()
            sub_id, fund_id, session_id = sub.id, fund.id, sub.checkout_session_id
            db.session.remove()
        server.pay(session_id)
        events = dict(server.subscription_events(server.sessions[session_id]))
        invoice = events["invoice.paid"]
        assert (invoice["amount_paid"], invoice["currency"]) == (2500, "usd")
        # The Checkout's completion, processed in-process (no Redis yet): Stripe's ids are learnt, still pending.
        assert post_event(crash_app.test_client(), "checkout.session.completed", events["checkout.session.completed"],
                          "evt_fund_checkout").status_code in (200, 202)
        with crash_app.app_context():
            sub = db.session.get(FundSubscription, sub_id)
            assert sub.state is SubscriptionState.pending and sub.stripe_subscription_id == invoice["subscription"]
            db.session.remove()

        queue = _use_redis(crash_app, redis_url)
        assert post_event(crash_app.test_client(), "invoice.paid", invoice, "evt_fund_invoice").status_code in (
            200, 202)
        [job] = queue("webhooks").get_jobs()
        assert job.func_name == "jobs.webhooks.process_delivery"

        # The subscription's row, held so that it can still be referenced (a receipt's
        # foreign key) but not updated: the job stops once the receipt and its ledger
        # rows are flushed, at the pending -> active move, inside its transaction.
        _kill_while_held(crash_app, tmp_path, "webhooks", "fund_subscription", sub_id,
                         {"fund_receipt", "ledger_transaction", "ledger_entry"}, "the invoice job")

        with crash_app.app_context():
            delivery = db.session.scalar(sa.select(WebhookDelivery).where(
                WebhookDelivery.delivery_id == "evt_fund_invoice"))
            assert (delivery.status, delivery.attempts) == (DeliveryStatus.pending, 0)
            assert db.session.scalar(sa.select(sa.func.count()).select_from(FundReceipt)) == 0
            assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 0
            delivery_id = delivery.id
            db.session.remove()

        # Recovery 1: RQ retries the abandoned job (it has retries left) after its 10 s interval.
        started = StartedJobRegistry(queue=queue("webhooks"))
        started.cleanup(timestamp=time.time() + JOB_TIMEOUT_PASSED)
        assert started.get_job_ids() == []
        assert queue("webhooks").scheduled_job_registry.get_job_ids() == [job.id]
        # Recovery 2: the cron pass queues the delivery, still pending after five minutes, again.
        with crash_app.app_context():
            db.session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                               .values(received_at=WebhookDelivery.received_at - timedelta(minutes=10)))
            assert requeue_pending() == 1
            db.session.commit()
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
            assert (delivery.status, delivery.attempts) == (DeliveryStatus.processed, 1)
            [receipt] = db.session.scalars(sa.select(FundReceipt)).all()
            assert (receipt.external_id, receipt.amount_minor, receipt.subscription_id) == (invoice["id"], 2500,
                                                                                          sub_id)
            assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction).where(
                LedgerTransaction.idempotency_key == f"fund-receipt:{invoice['id']}")) == 1
            assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 2500
            assert db.session.get(FundSubscription, sub_id).state is SubscriptionState.active
            assert check() == []
            db.session.remove()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


def test_a_worker_killed_while_returning_an_expired_allotment_returns_it_once(crash_app, redis_url, tmp_path):
    """SIGKILL while ``return-expired-allotments`` has posted the return (escrow
    → fund) and waits to mark the allotment returned (the test holds its row):
    nothing is committed. RQ moves the abandoned cron job (no retries) to the
    failed registry; the next cron passes return the allotment, once."""
    from marketplace.extensions import db
    from marketplace.funds import service as funds
    from marketplace.funds.models import Allotment, AllotmentState, ProjectFund, SubscriptionRail
    from marketplace.ledger import service as ledger
    from marketplace.ledger.check import check
    from marketplace.ledger.models import AccountKind, LedgerTransaction
    from marketplace.money import Money
    from marketplace.tasks import enqueue
    from marketplace.timeutil import utcnow

    def escrow(item_id: int) -> int:
        return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item_id), "USD")

    with crash_app.app_context():
        fund, item, maintainer = _fund_of_a_project()
        sub = funds.subscribe(fund, _subscriber("ada@example.org"), 10000, rail=SubscriptionRail.bank_transfer)
        assert funds.receive(sub.id, f"transfer:{sub.id}:BANK-1", Money(10000, "USD"), actor="test")
        allotment = funds.allot(fund.id, item, 6000, reason="The fix the clinics need", maintainer=maintainer)
        allotment.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
        allotment_id, fund_id, item_id = allotment.id, fund.id, item.id
        assert (funds.fund_balance(fund), escrow(item_id)) == (4000, 6000)
        db.session.remove()
    queue = _use_redis(crash_app, redis_url)
    with crash_app.app_context():
        enqueue("jobs.money.return_expired_allotments")
        db.session.commit()
    [job] = queue("money").get_jobs()

    # The allotment's row, held: the job stops once the return's ledger rows
    # are flushed, at the allotment's move to returned, inside its transaction.
    _kill_while_held(crash_app, tmp_path, "money", "fund_allotment", allotment_id,
                     {"ledger_transaction", "ledger_entry", "item_funding"}, "the cron job")

    with crash_app.app_context():
        assert db.session.get(Allotment, allotment_id).state is AllotmentState.held
        assert (funds.fund_balance(db.session.get(ProjectFund, fund_id)), escrow(item_id)) == (4000, 6000)
        db.session.remove()

    # Recovery 1: the abandoned cron job has no retries: RQ moves it to the failed registry.
    StartedJobRegistry(queue=queue("money")).cleanup(timestamp=time.time() + JOB_TIMEOUT_PASSED)
    assert FailedJobRegistry(queue=queue("money")).get_job_ids() == [job.id]
    # Recovery 2: the hourly cron pass, twice (two ticks), run by a worker.
    with crash_app.app_context():
        enqueue("jobs.money.return_expired_allotments")
        enqueue("jobs.money.return_expired_allotments")
        db.session.commit()
    worker = Worker(crash_app, tmp_path, "money", burst=True)
    assert worker.wait() == 0, worker.log()
    finished = FinishedJobRegistry(queue=queue("money"))
    assert sorted(queue("money").fetch_job(job_id).return_value() for job_id in finished.get_job_ids()) == [
        [], [allotment_id]]
    with crash_app.app_context():
        allotment = db.session.get(Allotment, allotment_id)
        assert (allotment.state, allotment.return_reason) == (AllotmentState.returned,
                                                              "expired with no claim at work")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == f"fund-allotment:{allotment_id}:returned")) == 1
        assert (funds.fund_balance(db.session.get(ProjectFund, fund_id)), escrow(item_id)) == (10000, 0)
        assert check() == []
        db.session.remove()
