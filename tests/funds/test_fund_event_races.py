"""Stripe events of one fund subscription applied in two real PostgreSQL
sessions at once (breaker pass): the same ``invoice.paid`` twice (two event
ids, two workers), and ``invoice.paid`` beside ``customer.subscription.deleted``;
two reports of one refund's failure (ours, or one made in Stripe's dashboard) at once."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.funds import service as funds
from marketplace.funds.models import FundReceipt, FundSubscription, ProjectFund, SubscriptionRail, SubscriptionState
from marketplace.ledger.check import check
from marketplace.payments import fund_events
from marketplace.projects.models import MemberProject, RegistryStatus
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus
from tests.races import at_once, race_database_app


@pytest.fixture
def race_app(database_url):
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_fund_event_race") as app:
        yield app


def _card_subscription() -> tuple[int, int]:
    project = MemberProject(slug="race-events", name="Race events", registry_status=RegistryStatus.active,
                            admitted_at=utcnow())
    person = User(display_name="sub", email_verified_at=utcnow())
    person.set_email("race-sub@example.org")
    db.session.add_all([project, person])
    db.session.flush()
    fund = funds.fund_of(project, "USD")
    sub = funds.subscribe(fund, person, 2000, rail=SubscriptionRail.card)
    db.session.commit()
    return fund.id, sub.id


def _event(event_type: str, obj: dict) -> dict:
    return {"id": f"evt_{event_type}", "type": event_type, "data": {"object": obj}}


def _invoice(sub_id: int) -> dict:
    return {"id": "in_race_0001", "object": "invoice", "amount_paid": 2000, "currency": "usd",
            "subscription": "sub_race_1", "customer": "cus_race_1", "payment_intent": "pi_race_1",
            "metadata": {}, "subscription_details": {"metadata": {"fund_subscription_id": str(sub_id)}}}


def _apply(app, event: dict):
    def run():
        with app.app_context():
            try:
                status, outcome = fund_events.apply_fund_event(event, None)
                db.session.commit()
                return status, outcome
            except Exception as exc:  # noqa: BLE001 - the race's loser is what the test reads
                db.session.rollback()
                return DeliveryStatus.failed, repr(exc)
            finally:
                db.session.remove()
    return run


def _hold_the_fund_lock(monkeypatch):
    """The first session to lock the fund waits (up to a second) for the other
    to reach the lock too: without the fund's row lock both would go on together."""
    both = threading.Barrier(2, timeout=1)
    locked = funds._locked

    def lock_then_wait(fund_id):
        fund = locked(fund_id)
        try:
            both.wait()
        except threading.BrokenBarrierError:
            pass
        return fund

    monkeypatch.setattr(funds, "_locked", lock_then_wait)


@pytest.mark.postgres
def test_the_same_invoice_paid_applied_by_two_workers_at_once_funds_once(race_app, monkeypatch):
    with race_app.app_context():
        fund_id, sub_id = _card_subscription()
        db.session.remove()
    _hold_the_fund_lock(monkeypatch)
    paid = _invoice(sub_id)
    outcomes = at_once(_apply(race_app, _event("invoice.paid", paid)),
                       _apply(race_app, {**_event("invoice.paid", paid), "id": "evt_again"}))
    assert [status for status, _ in outcomes] == [DeliveryStatus.processed] * 2, outcomes
    assert sorted("received already" in outcome for _, outcome in outcomes) == [False, True], outcomes
    with race_app.app_context():
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 2000
        assert db.session.scalars(select(FundReceipt.amount_minor)).all() == [2000]
        assert check() == []


@pytest.mark.postgres
def test_invoice_paid_and_subscription_deleted_at_once_fund_it_and_end_it(race_app):
    with race_app.app_context():
        fund_id, sub_id = _card_subscription()
        db.session.remove()
    deleted = {"id": "sub_race_1", "object": "subscription", "status": "canceled", "customer": "cus_race_1",
               "metadata": {"fund_subscription_id": str(sub_id)}}
    outcomes = at_once(_apply(race_app, _event("invoice.paid", _invoice(sub_id))),
                       _apply(race_app, _event("customer.subscription.deleted", deleted)))
    assert [status for status, _ in outcomes] == [DeliveryStatus.processed] * 2, outcomes
    with race_app.app_context():
        sub = db.session.get(FundSubscription, sub_id)
        assert sub.state is SubscriptionState.ended and sub.stripe_subscription_id == "sub_race_1"
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 2000
        assert check() == []


@pytest.mark.postgres
def test_an_item_closed_while_an_allotment_to_it_commits_gets_the_allotment_back_to_the_fund(race_app):
    """The allotment holds its locks (not committed yet) when the forge's close
    is written by another worker: the close waits for it, then finds the
    allotment and gives it back — nothing is left held on a closed item."""
    import time

    from marketplace.backlog.models import BacklogItem, ItemState
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.funds.models import Allotment, AllotmentState
    from marketplace.ledger import service as ledger
    from marketplace.ledger.models import AccountKind
    from marketplace.money import Money
    from marketplace.projects.models import ProjectMaintainer

    with race_app.app_context():
        fund_id, sub_id = _card_subscription()
        fund = db.session.get(ProjectFund, fund_id)
        repo = Repository(project=fund.project, forge=ForgeKind.github, host="github.com", owner="race",
                          name="close", path_key="race/close", url="https://github.com/race/close")
        maintainer = User(display_name="m", email_verified_at=utcnow())
        maintainer.set_email("race-m@example.org")
        db.session.add_all([repo, maintainer])
        db.session.flush()
        db.session.add(ProjectMaintainer(project_id=fund.project_id, user_id=maintainer.id, granted_by="test"))
        now = utcnow()
        item = BacklogItem(repository=repo, forge_host="github.com", forge_id=880001, number=1, title="Race close",
                           state=ItemState.open, html_url="https://github.com/race/close/1", forge_created_at=now,
                           forge_updated_at=now)
        db.session.add(item)
        db.session.flush()
        ledger.account(AccountKind.item_escrow, item_id=item.id)
        ledger.funding_row(item.id, "USD")
        funds.receive(sub_id, "in_race_close", Money(3000, "USD"), actor="test")
        db.session.commit()
        item_id, maintainer_id = item.id, maintainer.id
        db.session.remove()

    allotted, closing = threading.Event(), []

    def allot():
        with race_app.app_context():
            try:
                funds.allot(fund_id, db.session.get(BacklogItem, item_id), 2000, reason="race",
                            maintainer=db.session.get(User, maintainer_id))
                allotted.set()
                time.sleep(0.5)  # the close is written meanwhile, by another worker
                db.session.commit()
            finally:
                allotted.set()
                db.session.remove()

    def close():
        allotted.wait(5)
        with race_app.app_context():
            try:
                db.session.execute(sa.update(BacklogItem).where(BacklogItem.id == item_id)
                                   .values(state=ItemState.closed))
                closing.append(funds.return_item_allotments(db.session.get(BacklogItem, item_id), why="not planned"))
                db.session.commit()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=allot), threading.Thread(target=close)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with race_app.app_context():
        assert closing == [2000]
        assert [a.state for a in db.session.scalars(select(Allotment))] == [AllotmentState.returned]
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 3000
        assert check() == []


def _paid_then_returned() -> tuple[int, int]:
    """The card subscription's 20.00 invoice paid (PaymentIntent pi_race_1); the project
    leaves and the return of 20.00 is booked as paid by card refund re_race_1.
    Returns (fund id, return id)."""
    fund_id, sub_id = _card_subscription()
    status, _outcome = fund_events.apply_fund_event(_event("invoice.paid", _invoice(sub_id)), None)
    assert status is DeliveryStatus.processed
    host = User(display_name="host", is_admin=True, email_verified_at=utcnow())
    host.set_email("race-host@example.org")
    db.session.add(host)
    db.session.flush()
    (row,) = funds.close_fund(fund_id, actor=host)
    assert funds.book_return(row, "re_race_1")
    db.session.commit()
    return fund_id, row.id


def _refund_event(event_type: str, refund_id: str, event_id: str, **extra) -> dict:
    refund = {"id": refund_id, "object": "refund", "amount": 2000, "currency": "usd", "status": "failed",
              "payment_intent": "pi_race_1", "failure_reason": "expired_or_canceled_card", "metadata": {}, **extra}
    return {"id": event_id, "type": event_type, "data": {"object": refund}}


def _apply_refund(app, event: dict):
    def run():
        with app.app_context():
            try:
                status, outcome = fund_events.apply_fund_refund_event(event, None)
                db.session.commit()
                return status, outcome
            except Exception as exc:  # noqa: BLE001 - the race's loser is what the test reads
                db.session.rollback()
                return DeliveryStatus.failed, repr(exc)
            finally:
                db.session.remove()
    return run


@pytest.mark.postgres
def test_refund_failed_and_charge_refund_updated_at_once_owe_a_failed_return_refund_once(race_app, monkeypatch):
    from marketplace.funds.models import FundReturn, FundReturnState

    with race_app.app_context():
        fund_id, return_id = _paid_then_returned()
        db.session.remove()
    _hold_the_fund_lock(monkeypatch)
    outcomes = at_once(_apply_refund(race_app, _refund_event("refund.failed", "re_race_1", "evt_rf")),
                       _apply_refund(race_app, _refund_event("charge.refund.updated", "re_race_1", "evt_cru")))
    assert [status for status, _ in outcomes] == [DeliveryStatus.processed] * 2, outcomes
    assert sorted("recorded already" in outcome for _, outcome in outcomes) == [False, True], outcomes
    with race_app.app_context():
        rows = db.session.scalars(select(FundReturn).order_by(FundReturn.id)).all()
        assert [(r.id == return_id, r.state, r.amount_minor, r.reference) for r in rows] == [
            (True, FundReturnState.failed, 2000, "re_race_1"), (False, FundReturnState.due, 2000, "re_race_1")]
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 2000
        assert check() == []
        db.session.remove()


@pytest.mark.postgres
def test_two_failures_of_a_refund_made_at_stripe_at_once_give_it_back_once(race_app, monkeypatch):
    """8.00 refunded in Stripe's dashboard (taken back), then refund.failed and
    charge.refund.updated (failed) applied at once: 8.00 back in the fund, once."""
    with race_app.app_context():
        fund_id, sub_id = _card_subscription()
        assert fund_events.apply_fund_event(_event("invoice.paid", _invoice(sub_id)), None)[0] \
            is DeliveryStatus.processed
        receipt = db.session.scalar(select(FundReceipt))
        assert funds.take_back(receipt.id, "refund:re_dash_1", 800, why="refunded at Stripe") == 800
        db.session.commit()
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 1200
        db.session.remove()
    _hold_the_fund_lock(monkeypatch)
    outcomes = at_once(
        _apply_refund(race_app, _refund_event("refund.failed", "re_dash_1", "evt_rf", amount=800)),
        _apply_refund(race_app, _refund_event("charge.refund.updated", "re_dash_1", "evt_cru", amount=800)))
    assert sorted(outcome.split(": ")[1] for _, outcome in outcomes) == [
        f"0 given back to fund {fund_id}", f"800 given back to fund {fund_id}"], outcomes
    with race_app.app_context():
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 2000
        assert db.session.scalar(select(FundReceipt.refunded_minor)) == 0
        assert check() == []
        db.session.remove()
