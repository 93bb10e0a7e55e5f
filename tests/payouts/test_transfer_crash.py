"""A worker killed between Stripe's transfer and our commit never pays twice:
the attempt in flight is committed first, and the retry looks the transfer up
in the payout's transfer group, even after Stripe has forgotten the key."""
from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import timedelta

import pytest

from jobs.money import transfer_share
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutShare, ShareState
from marketplace.standins.stripe import LocalStripe
from marketplace.tasks import pending_jobs
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW, balance
from tests.payouts.test_payout_transfers import connected, merged_and_approved, stripe_api  # noqa: F401


def _killed_after_stripe_answered(world, stripe_api, share_id: int) -> None:
    """The job's two steps, the second dying before its commit: step one
    (the attempt in flight) commits; Stripe makes the transfer and answers;
    the worker is killed, so nothing of the answer reaches the database."""
    now = utcnow()
    assert payouts.begin_transfer(share_id, now)
    world.session.commit()
    killed = world.session.begin_nested()
    assert payouts.transfer(share_id, now)
    killed.rollback()
    world.session.expire_all()
    assert len(stripe_api.transfers) == 1
    share = world.session.get(PayoutShare, share_id)
    assert (share.state, share.stripe_transfer_id) == (ShareState.transferring, None)
    assert share.transfer_in_flight_at is not None


def _executed_share(world, stripe_api, number: int, github_id: int) -> tuple[PayoutShare, str]:
    ama = world.implementor(f"ama{number}@example.org", github_id=github_id)
    account_id = connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, number, 10000, ama, github_id)
    [share] = payout.shares
    # Execution queues the transfer job; here each step is run by hand instead.
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    del pending_jobs(world.session)[:]
    world.session.commit()
    return share, account_id


def test_worker_killed_after_stripe_answered_then_prompt_retry_makes_one_transfer(world, stripe_api, notices_sent):
    share, account_id = _executed_share(world, stripe_api, 311, 7311)
    _killed_after_stripe_answered(world, stripe_api, share.id)
    assert transfer_share(share.id) is True  # the job again, at once: Stripe still knows the key
    world.session.expire_all()
    share = world.session.get(PayoutShare, share.id)
    [made] = stripe_api.transfers.values()
    assert (made["amount"], made["destination"]) == (9000, account_id)
    assert (share.state, share.stripe_transfer_id, share.transfer_in_flight_at) == (ShareState.paid, made["id"], None)
    assert balance(AccountKind.payouts_paid) == 9000


def test_worker_killed_after_stripe_answered_then_retry_after_stripe_forgot_the_key_makes_one_transfer(
        world, stripe_api, notices_sent):
    share, _account_id = _executed_share(world, stripe_api, 312, 7312)
    _killed_after_stripe_answered(world, stripe_api, share.id)
    stripe_api.forget_idempotency_keys()  # the retry comes more than 24 hours later
    stripe_api.requests.clear()
    done = payouts.retry_due(utcnow() + timedelta(hours=25))
    assert done["retried"] == [share.id]
    world.session.expire_all()
    share = world.session.get(PayoutShare, share.id)
    [made] = stripe_api.transfers.values()
    assert made["amount"] == 9000
    assert (share.state, share.stripe_transfer_id) == (ShareState.paid, made["id"])
    # It asked the transfer group, and made nothing.
    assert [r[:2] for r in stripe_api.requests] == [("GET", "/v1/transfers")]
    assert balance(AccountKind.payouts_paid) == 9000
    assert payouts.retry_due(utcnow() + timedelta(days=2))["retried"] == []
    assert len(stripe_api.transfers) == 1


def test_first_attempt_with_its_marker_just_committed_asks_stripe_once_and_no_lookup(world, stripe_api,
                                                                                  notices_sent):
    share, _account_id = _executed_share(world, stripe_api, 313, 7313)
    stripe_api.requests.clear()
    assert transfer_share(share.id) is True
    assert [r[:2] for r in stripe_api.requests] == [("POST", "/v1/transfers")]


def test_reconciliation_reports_a_second_transfer_for_one_share_and_flags_the_payout(world, stripe_api,
                                                                                     notices_sent):
    share, account_id = _executed_share(world, stripe_api, 314, 7314)
    assert transfer_share(share.id) is True
    assert payouts.reconcile_transfers() == []
    # A second transfer for the same share, made some other way (what the old code did after a crash).
    stripe_api.forget_idempotency_keys()
    from marketplace.money import Money
    from marketplace.payments import stripe_client

    stripe_client.create_transfer(Money(9000, "USD"), account_id, idempotency_key=share.transfer_idempotency_key,
                                  transfer_group=f"payout-{share.payout_id}",
                                  metadata={"payout_id": share.payout_id, "share_id": share.id})
    report = payouts.reconcile_transfers()
    assert report == [f"payout {share.payout_id}: share {share.id} is paid but Stripe has 2 transfers for it"]
    payout = share.payout
    assert payout.flagged_at is not None and "2 transfers" in payout.flag_reason
    assert payouts.reconcile_transfers() == report  # reported again, audited once


@pytest.mark.postgres
@pytest.mark.parametrize("key_forgotten", [False, True], ids=["prompt-retry", "retry-after-stripe-forgot-the-key"])
def test_worker_sigkilled_after_stripe_made_the_transfer_is_retried_into_one_transfer(race_app, key_forgotten):
    """A real worker process, killed with SIGKILL once Stripe has made the
    transfer and before its answer (so before our commit); then the job runs
    again, at once or after Stripe forgot the key: one transfer, paid once."""
    from marketplace.extensions import db

    server = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    try:
        with race_app.app_context():
            share_id, account_id = _executed_share_in_a_real_database(server)
            db.session.remove()
            db.engine.dispose()
        context = multiprocessing.get_context("fork")

        def worker():
            with race_app.app_context():
                db.engine.dispose(close=False)
                transfer_share(share_id)

        child = context.Process(target=worker)
        server.on_transfer_made = lambda _transfer: os.kill(child.pid, signal.SIGKILL)
        child.start()
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        server.on_transfer_made = None
        assert len(server.transfers) == 1
        if key_forgotten:
            server.forget_idempotency_keys()
        with race_app.app_context():
            share = db.session.get(PayoutShare, share_id)
            assert (share.state, share.transfer_in_flight_at is not None) == (ShareState.transferring, True)
            db.session.remove()
            assert transfer_share(share_id) is True
            share = db.session.get(PayoutShare, share_id)
            [made] = server.transfers.values()
            assert (made["amount"], made["destination"]) == (9000, account_id)
            assert (share.state, share.stripe_transfer_id) == (ShareState.paid, made["id"])
            assert check() == []
            db.session.remove()
    finally:
        server.stop()


def _executed_share_in_a_real_database(server: LocalStripe) -> tuple[int, str]:
    """An executed payout of 100.00 at 10% whose 90.00 share is to be transferred (committed)."""
    from marketplace.accounts.models import User
    from marketplace.backlog.models import BacklogItem, ItemState
    from marketplace.claims import certification
    from marketplace.extensions import db
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.money import Money
    from marketplace.payments import stripe_client
    from marketplace.payouts.models import PayoutAccount, PayoutRail
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Rail
    from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus

    now = utcnow()
    project = MemberProject(slug="crash", name="Crash", registry_status=RegistryStatus.active, fee_rate_bps=1000,
                            admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="crash", name="crash",
                      path_key="crash/crash", url="https://github.com/crash/crash")
    item = BacklogItem(repository=repo, forge_host="github.com", forge_id=1, number=1, title="Crash",
                       state=ItemState.closed, html_url="https://github.com/crash/crash/issues/1",
                       forge_created_at=now, forge_updated_at=now)
    people = []
    for email, admin, implementor in (("m@example.org", False, False), ("admin@example.org", True, False),
                                      ("ama@example.org", False, True)):
        user = User(display_name=email, is_admin=admin, is_implementor=implementor, email_verified_at=now)
        user.set_email(email)
        people.append(user)
    db.session.add_all([project, repo, item, *people])
    db.session.flush()
    maintainer, admin, ama = people
    db.session.add(ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"))
    certification.grant(ama, issuer=admin, project_id=None)
    account_id = stripe_client.create_connected_account(ama.id, country="KE", email=ama.email)
    server.activate(account_id)
    # Not active yet: execution leaves the share owed, and no transfer job runs by itself.
    db.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.stripe, stripe_account_id=account_id,
                                 transfers_active=False))
    pledge = pledges.create(item, admin.id, Money(10000, "USD"), rail=Rail.card, actor="test")
    pledges.mark_received(pledge.id, Money(10000, "USD"), actor="test")
    [payout] = payouts.propose(item, reason="closed_completed")
    payouts.approve(payout.id, maintainer=maintainer, recipients=[(ama.id, 1)])
    db.session.commit()  # the window is 0 days here: the payout executes after this commit
    db.session.expire_all()
    [share] = db.session.get(type(payout), payout.id).shares
    assert share.state is ShareState.awaiting_account
    db.session.get(PayoutAccount, ama.id).transfers_active = True
    share.state = ShareState.transferring
    db.session.commit()
    return share.id, account_id
