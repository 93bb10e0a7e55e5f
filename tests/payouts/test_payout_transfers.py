"""Payouts through Stripe Connect: the real stripe library against the local
Stripe server; exactly one transfer per share whatever retries, timeouts,
double approvals and late account activations happen."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.payments import stripe_client
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutAccount, PayoutRail, PayoutState, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.standins.stripe import LocalStripe
from marketplace.timeutil import utcnow
from tests.payments.test_stripe_events import post_event
from tests.payouts.helpers import AFTER_WINDOW, World, balance


@pytest.fixture
def stripe_api(app):
    server = LocalStripe()
    saved = {k: app.config.get(k) for k in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_TIMEOUT_SECONDS")}
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url, STRIPE_TIMEOUT_SECONDS=1)
    server.drop_response_seconds = 1.5
    yield server
    app.config.update(saved)
    server.stop()


def connected(world: World, stripe_api: LocalStripe, user: User, *, active: bool) -> str:
    """A Stripe Express account for ``user`` (made through the library), active or not."""
    account_id = stripe_client.create_connected_account(user.id, country="KE", email=user.email)
    world.session.add(PayoutAccount(user_id=user.id, rail=PayoutRail.stripe, stripe_account_id=account_id,
                                    transfers_active=active))
    if active:
        stripe_api.activate(account_id)
    world.session.flush()
    return account_id


def merged_and_approved(world: World, number: int, amount: int, user: User, github_id: int) -> Payout:
    item = world.issue(number)
    world.fund(item, amount)
    world.claim(item, user)
    world.pull(number + 1000, f"Fixes #{number}", author_id=github_id, merged=True)
    [payout] = world.payouts_of(item)
    return world.approve(payout, [(user.id, 1)])


def test_transfer_job_timing_out_after_stripe_made_the_transfer_is_retried_into_one_transfer(world, stripe_api,
                                                                                            monkeypatch):
    ama = world.implementor("ama@example.org", github_id=7001)
    account_id = connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, 301, 10000, ama, 7001)
    [share] = payout.shares
    # The job dies after Stripe made the transfer: the answer never reaches us.
    real = stripe_client.create_transfer

    def made_then_lost(*args, **kwargs):
        real(*args, **kwargs)
        raise stripe_client.PaymentsUnavailable("read timed out")

    monkeypatch.setattr(stripe_client, "create_transfer", made_then_lost)
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert payouts.transfer(share.id) is False
    assert (share.state, len(stripe_api.transfers)) == (ShareState.transferring, 1)
    assert balance(AccountKind.payouts_paid) == 0
    # The retry (the cron, once its back-off has passed) asks again with the same key.
    monkeypatch.setattr(stripe_client, "create_transfer", real)
    done = payouts.retry_due(utcnow() + timedelta(hours=1))
    assert done["retried"] == [share.id]
    # Every request to make it carried the same key (the retry first looks the transfer up).
    keys = [r[3].get("Idempotency-Key") for r in stripe_api.requests if r[:2] == ("POST", "/v1/transfers")]
    assert keys and set(keys) == {share.transfer_idempotency_key}
    [transfer] = stripe_api.transfers.values()
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (9000, "usd", account_id)
    assert (share.state, share.stripe_transfer_id, payout.state) == (ShareState.paid, transfer["id"],
                                                                     PayoutState.paid)
    assert balance(AccountKind.payouts_paid) == 9000
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 0
    # Another retry, or the job run again: nothing more.
    assert payouts.transfer(share.id) is False
    assert payouts.retry_due(utcnow() + timedelta(days=1))["retried"] == []
    assert len(stripe_api.transfers) == 1
    assert check() == []


def test_lost_response_inside_the_library_still_makes_one_transfer(world, stripe_api):
    ama = world.implementor("ama@example.org", github_id=7002)
    connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, 302, 5000, ama, 7002)
    stripe_api.drop_next_transfer_response = True
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    payouts.transfer(share.id)
    if share.state is not ShareState.paid:  # the library gave up before its own retry answered
        payouts.retry_due(utcnow() + timedelta(hours=1))
    assert share.state is ShareState.paid
    assert [t["amount"] for t in stripe_api.transfers.values()] == [4500]
    assert balance(AccountKind.payouts_paid) == 4500


def test_inactive_account_waits_with_one_message_then_account_updated_pays_once(world, stripe_api, client,
                                                                               notices_sent):
    ama = world.implementor("ama@example.org", github_id=7003)
    account_id = connected(world, stripe_api, ama, active=False)
    payout = merged_and_approved(world, 303, 10000, ama, 7003)
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert share.state is ShareState.awaiting_account
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000  # owed, safely
    # No retry loop: the cron leaves it alone, and nobody is told twice.
    assert payouts.retry_due(utcnow() + timedelta(days=2))["retried"] == []
    assert [n for n in notices_sent if n[0] == "share"] == [("share", "how_to_receive", share.id)]
    assert stripe_api.transfers == {}
    # Stripe says the account can receive now (a signed account.updated), twice.
    account = stripe_api.activate(account_id)
    for event_id in ("evt_acct_1", "evt_acct_1", "evt_acct_2"):
        assert post_event(client, "account.updated", account, event_id).status_code in (200, 202)
    world.session.expire_all()
    share = world.session.get(type(share), share.id)
    assert share.state is ShareState.paid
    assert [(t["amount"], t["destination"]) for t in stripe_api.transfers.values()] == [(9000, account_id)]
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 0
    assert [n for n in notices_sent if n[0] == "share"] == [("share", "how_to_receive", share.id),
                                                          ("share", "paid", share.id)]
    assert check() == []


def test_stripe_refusing_for_the_account_waits_and_the_next_attempt_uses_a_new_key(world, stripe_api, client):
    ama = world.implementor("ama@example.org", github_id=7004)
    account_id = connected(world, stripe_api, ama, active=True)
    stripe_api.deactivate(account_id)  # our record says active; Stripe knows better
    payout = merged_and_approved(world, 304, 10000, ama, 7004)
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    first_key = share.transfer_idempotency_key
    payouts.transfer(share.id)
    assert (share.state, share.refusals) == (ShareState.awaiting_account, 1)
    post_event(client, "account.updated", stripe_api.activate(account_id), "evt_acct_3")
    world.session.expire_all()
    share = world.session.get(type(share), share.id)
    assert share.state is ShareState.paid and share.transfer_idempotency_key != first_key
    assert len(stripe_api.transfers) == 1


def test_refund_after_payout_is_refused_to_self_service_and_both_admin_paths_balance(world, stripe_api):
    ama = world.implementor("ama@example.org", github_id=7005)
    connected(world, stripe_api, ama, active=True)
    item = world.issue(305)
    first, second = world.fund(item, 6000), world.fund(item, 4000)
    world.claim(item, ama)
    world.pull(1305, "Fixes #305", author_id=7005, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    payouts.transfer(share.id)
    assert share.state is ShareState.paid and balance(AccountKind.payouts_paid) == 9000
    with pytest.raises(pledges.PledgeError, match="paid out"):
        pledges.self_service_refund(first.id, actor="funder")
    # Path 1: reverse 30.00 of the transfer and refund it to the funder.
    after_payout.refund_after_payout(first.id, 3000, path="reversal", share_id=share.id, admin=world.admin)
    [transfer] = stripe_api.transfers.values()
    assert transfer["amount_reversed"] == 3000
    assert balance(AccountKind.payouts_paid) == 6000
    assert balance(AccountKind.refunds) == 3000
    assert balance(AccountKind.commons_funds) == 0
    # Path 2: refund 40.00 from the commons' funds, owed back by the recipient.
    after_payout.refund_after_payout(second.id, 4000, path="receivable", share_id=share.id, admin=world.admin)
    assert balance(AccountKind.contributor_receivable, user_id=ama.id) == -4000
    assert balance(AccountKind.refunds) == 7000
    assert (world.session.get(Pledge, first.id).refunded_minor, world.session.get(Pledge, second.id).refunded_minor) \
        == (3000, 4000)
    assert check() == []


def test_dispute_lost_after_payout_is_a_loss_of_exactly_the_disputed_amount(world, client):
    ama = world.implementor("ama@example.org", github_id=7006)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    item = world.issue(306)
    pledge = world.fund(item, 5000)
    world.claim(item, ama)
    world.pull(1306, "Fixes #306", author_id=7006, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    dispute = {"id": "dp_after", "object": "dispute", "amount": 5000, "currency": "usd",
               "payment_intent": pledge.payment_intent_id, "status": "lost"}
    post_event(client, "charge.dispute.created", dict(dispute, status="needs_response"), "evt_dp_1")
    for event_id in ("evt_dp_2", "evt_dp_2b"):
        post_event(client, "charge.dispute.closed", dispute, event_id)
    assert balance(AccountKind.disputes) == 5000
    assert balance(AccountKind.commons_funds) == -5000
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 4500  # the recipient is still owed
    assert world.session.get(Pledge, pledge.id).refunded_minor == 5000
    assert check() == []


# --- two approvals in two real sessions, 300 ms apart -------------------------------

@pytest.mark.postgres
def test_two_approvals_300ms_apart_in_two_sessions_make_one_payout_and_one_transfer(race_app):
    from marketplace.backlog.models import BacklogItem, ItemState
    from marketplace.claims import certification
    from marketplace.extensions import db
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus

    server = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    try:
        with race_app.app_context():
            project = MemberProject(slug="race", name="Race", registry_status=RegistryStatus.active,
                                    fee_rate_bps=1000, admitted_at=utcnow())
            repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="race",
                              name="race", path_key="race/race", url="https://github.com/race/race")
            now = utcnow()
            item = BacklogItem(repository=repo, forge_host="github.com", forge_id=1, number=1, title="Race",
                               state=ItemState.closed, html_url="https://github.com/race/race/issues/1",
                               forge_created_at=now, forge_updated_at=now)
            people = []
            for email, admin, implementor in (("m1@example.org", False, False), ("m2@example.org", False, False),
                                              ("admin@example.org", True, False), ("ama@example.org", False, True)):
                user = User(display_name=email, is_admin=admin, is_implementor=implementor, email_verified_at=now)
                user.set_email(email)
                people.append(user)
            db.session.add_all([project, repo, item, *people])
            db.session.flush()
            m1, m2, admin, ama = people
            db.session.add_all([ProjectMaintainer(project_id=project.id, user_id=m.id, granted_by="test")
                                for m in (m1, m2)])
            certification.grant(ama, issuer=admin, project_id=None)
            account_id = stripe_client.create_connected_account(ama.id, country="KE", email=ama.email)
            server.activate(account_id)
            db.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.stripe, stripe_account_id=account_id,
                                         transfers_active=True))
            pledge = pledges.create(item, admin.id, Money(10000, "USD"), rail=Rail.card, actor="test")
            pledges.mark_received(pledge.id, Money(10000, "USD"), actor="test")
            [payout] = payouts.propose(item, reason="closed_completed")
            db.session.commit()
            payout_id, maintainer_ids, ama_id, pledge_id = payout.id, (m1.id, m2.id), ama.id, pledge.id
            db.session.remove()

        outcomes = []

        def approve(maintainer_id, delay):
            time.sleep(delay)
            with race_app.app_context():
                try:
                    payouts.approve(payout_id, maintainer=db.session.get(User, maintainer_id),
                                    recipients=[(ama_id, 1)])
                    db.session.commit()  # the execution and the transfer run after this commit
                    outcomes.append("approved")
                except payouts.PayoutError as exc:
                    db.session.rollback()
                    outcomes.append(str(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=approve, args=(m, d)) for m, d in zip(maintainer_ids, (0, 0.3))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["This payout was approved already.", "approved"]
        with race_app.app_context():
            payout = db.session.get(Payout, payout_id)
            assert payout.state is PayoutState.paid
            assert [(s.amount_minor, s.state) for s in payout.shares] == [(9000, ShareState.paid)]
            assert db.session.get(Pledge, pledge_id).state is PledgeState.released
            assert check() == []
            key = payout.shares[0].transfer_idempotency_key
            db.session.remove()
        assert [(t["amount"], t["destination"]) for t in server.transfers.values()] == [(9000, account_id)]
        assert {r[3].get("Idempotency-Key") for r in server.requests if r[:2] == ("POST", "/v1/transfers")} == {key}
    finally:
        server.stop()


def test_transparency_and_the_item_ledger_show_the_money_from_pledge_to_payout(world, stripe_api, client):
    ama = world.implementor("ama@example.org", github_id=7007)
    connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, 307, 10000, ama, 7007)
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    payouts.transfer(payout.shares[0].id)
    world.session.commit()
    body = client.get(f"/api/v1/items/{payout.item_id}/ledger").get_json()
    assert [(p["state"], p["amount_minor"]) for p in body["pledges"]] == [("released", 10000)]
    assert [(p["state"], p["gross_minor"], p["fee_minor"], [(s["recipient"], s["amount_minor"]) for s in p["shares"]])
            for p in body["payouts"]] == [("paid", 10000, 1000, [("ama", 9000)])]
    totals = client.get("/api/v1/ledger").get_json()["totals"]["USD"]
    assert (totals["received"], totals["held"], totals["fees"], totals["paid"], totals["owed"]) == (
        10000, 0, 1000, 9000, 0)
    page = client.get("/transparency").get_data(as_text=True)
    assert "Issue 307" in page and "$90.00" in page and "Every check holds" in page


@pytest.fixture
def redis_after_setup(app, redis_url):
    """Call it to send the app's jobs to a real (emptied) Redis from then on."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()

    def switch_on():
        app.config["REDIS_URL"] = redis_url
        app.extensions.pop("redis", None)
        return connection

    yield switch_on
    app.config["REDIS_URL"] = None
    app.extensions.pop("redis", None)
    connection.flushdb()


def test_on_redis_the_approval_schedules_execution_and_a_worker_makes_one_transfer(world, stripe_api, app,
                                                                                   redis_after_setup, session):
    from rq import Queue, SimpleWorker
    from rq.registry import ScheduledJobRegistry

    ama = world.implementor("ama@example.org", github_id=7010)
    account_id = connected(world, stripe_api, ama, active=True)
    item = world.issue(310)
    world.fund(item, 10000)
    world.claim(item, ama)
    world.pull(1310, "Fixes #310", author_id=7010, merged=True)
    [payout] = world.payouts_of(item)
    session.commit()
    rq_redis = redis_after_setup()
    world.approve(payout, [(ama.id, 1)])
    session.commit()  # the approval's jobs go to Redis now
    money = Queue("money", connection=rq_redis)
    scheduled = ScheduledJobRegistry(queue=money)
    assert scheduled.get_job_ids() == [f"payout-{payout.id}-execute"]
    assert money.count == 0  # nothing runs before the dispute window ends
    # The window passes; the scheduled job runs (here: moved to the queue by hand, as RQ's scheduler does).
    money.enqueue_job(money.fetch_job(f"payout-{payout.id}-execute"))
    payout.execute_after = utcnow() - timedelta(seconds=1)
    session.commit()
    with app.app_context():
        SimpleWorker([money], connection=rq_redis).work(burst=True)  # execute, then the transfer it queued
    session.expire_all()
    payout = session.get(Payout, payout.id)
    assert (payout.state, payout.shares[0].state) == (PayoutState.paid, ShareState.paid)
    assert [(t["amount"], t["destination"]) for t in stripe_api.transfers.values()] == [(9000, account_id)]
    # The same jobs again (a retried job, a second worker): nothing more.
    money.enqueue(payouts.execute, payout.id)
    from jobs.money import transfer_share
    money.enqueue(transfer_share, payout.shares[0].id)
    with app.app_context():
        SimpleWorker([money], connection=rq_redis).work(burst=True)
    assert len(stripe_api.transfers) == 1
    assert check() == []


def test_a_refund_made_in_stripes_dashboard_after_payout_is_covered_by_the_commons_once(world, stripe_api, client):
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=7011)
    connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, 311, 10000, ama, 7011)
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    payouts.transfer(payout.shares[0].id)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    charge = {"id": "ch_dash", "object": "charge", "amount": 10000, "currency": "usd",
              "payment_intent": pledge.payment_intent_id, "amount_refunded": 2500,
              "refunds": {"data": [{"id": "re_dashboard", "amount": 2500, "currency": "usd",
                                    "status": "succeeded"}], "has_more": False}}
    for event_id in ("evt_dash_1", "evt_dash_1", "evt_dash_2"):
        post_event(client, "charge.refunded", charge, event_id)
    world.session.expire_all()
    assert world.session.get(Pledge, pledge.id).refunded_minor == 2500
    assert (balance(AccountKind.refunds), balance(AccountKind.commons_funds), balance(AccountKind.payouts_paid)) \
        == (2500, -2500, 9000)
    assert check() == []


def test_a_retry_long_after_a_lost_answer_finds_the_transfer_instead_of_making_another(world, stripe_api,
                                                                                      monkeypatch):
    ama = world.implementor("ama@example.org", github_id=7012)
    connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, 312, 10000, ama, 7012)
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    real = stripe_client.create_transfer

    def made_then_lost(*args, **kwargs):
        real(*args, **kwargs)
        raise stripe_client.PaymentsUnavailable("read timed out")

    monkeypatch.setattr(stripe_client, "create_transfer", made_then_lost)
    payouts.transfer(share.id)
    assert share.state is ShareState.transferring and len(stripe_api.transfers) == 1
    # Days later Stripe no longer knows the key: a new request would make a second transfer.
    stripe_api.saved_responses.clear()
    monkeypatch.setattr(stripe_client, "create_transfer", real)
    assert payouts.transfer(share.id, utcnow() + timedelta(days=3))
    [transfer] = stripe_api.transfers.values()
    assert (share.state, share.stripe_transfer_id) == (ShareState.paid, transfer["id"])
    assert balance(AccountKind.payouts_paid) == 9000 and check() == []


def test_a_payout_step_that_fails_in_the_cron_sends_none_of_its_notices(world, stripe_api, monkeypatch):
    from marketplace.extensions import db
    from marketplace.tasks import pending_jobs

    ama = world.implementor("ama@example.org", github_id=7013)
    payout = merged_and_approved(world, 313, 10000, ama, 7013)  # no payout account: the share will wait
    before = len(pending_jobs(db.session))
    real_route = payouts._route

    def route_then_fail(share, now):
        real_route(share, now)  # queues the "how to receive" notice
        raise RuntimeError("boom")

    monkeypatch.setattr(payouts, "_route", route_then_fail)
    assert payouts.retry_due(utcnow() + AFTER_WINDOW)["executed"] == []
    assert len(pending_jobs(db.session)) == before
    assert world.session.get(Payout, payout.id).state is PayoutState.approved
    assert check() == []


def test_a_transfer_stripe_refuses_for_good_fails_the_share_once_keeps_the_money_owed_and_retries(
        world, stripe_api, notices_sent, monkeypatch):
    """Stripe refuses the transfer for a reason that is not the account's (the platform balance):
    the share is failed, its recipient told once, the money stays owed to them, and the retry
    cron tries again later with a new key (the refused one would replay the refusal)."""
    from marketplace.audit.models import AuditEvent
    from marketplace.standins.stripe import Refused

    ama = world.implementor("ama@example.org", github_id=7010)
    connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, 310, 10000, ama, 7010)

    def refuse(form):
        raise Refused(400, "balance_insufficient", "You have insufficient available funds in your Stripe account.")

    monkeypatch.setattr(stripe_api, "create_transfer", refuse)
    now = utcnow() + AFTER_WINDOW
    payouts.execute(payout.id, now)
    [share] = payout.shares
    first_key = share.transfer_idempotency_key
    if share.state is not ShareState.failed:
        payouts.transfer(share.id, now)
    assert (share.state, share.attempts, share.refusals) == (ShareState.failed, 1, 1)
    assert share.last_error.startswith("balance_insufficient: ")
    assert share.next_attempt_at == now + timedelta(seconds=payouts.RETRY_BACKOFF[0])
    assert stripe_api.transfers == {}
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000  # still owed, nothing paid
    # Not yet due: the cron leaves it; refused again when due: failed still, told only once.
    assert payouts.retry_due(now + timedelta(seconds=30))["retried"] == []
    later = now + timedelta(seconds=payouts.RETRY_BACKOFF[0])
    assert payouts.retry_due(later)["retried"] == [share.id]
    world.session.refresh(share)
    assert (share.state, share.attempts, share.refusals) == (ShareState.failed, 2, 2)
    assert [n for n in notices_sent if n[0] == "share" and n[1] == "failed"] == [("share", "failed", share.id)]
    failures = world.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "payout.transfer_failed", AuditEvent.object_id == str(share.id))).all()
    assert [e.details for e in failures] == [{"code": "balance_insufficient", "attempt": 1},
                                             {"code": "balance_insufficient", "attempt": 2}]
    # Stripe takes it once the balance is there: paid under a new key, one transfer.
    monkeypatch.delattr(stripe_api, "create_transfer")  # the server's own again
    assert payouts.retry_due(later + timedelta(seconds=payouts.RETRY_BACKOFF[1]))["retried"] == [share.id]
    world.session.refresh(share)
    assert share.state is ShareState.paid and share.transfer_idempotency_key != first_key
    assert [t["amount"] for t in stripe_api.transfers.values()] == [9000]
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 0
    assert check() == []
