"""Stripe events of one fund subscription applied in two real PostgreSQL
sessions at once (breaker pass): the same ``invoice.paid`` twice (two event
ids, two workers), and ``invoice.paid`` beside ``customer.subscription.deleted``."""
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
from tests.payouts.helpers import race_database_app
from tests.payouts.test_claim_races import at_once


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
