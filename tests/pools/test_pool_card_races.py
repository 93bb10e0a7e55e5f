"""A card pool's return raced in two real PostgreSQL sessions: the return job
(the refund row committed, then Stripe asked) and a webhook booking a refund
made in Stripe's dashboard. Whatever the order, the pool never goes below
zero, a row Stripe never made is not booked, and the ledger check passes."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pools import rails
from marketplace.pools import service as pools
from marketplace.pools.models import MatchingPool, PoolRefund, PoolRefundState
from tests.pools.helpers import PoolWorld, held
from tests.races import race_database_app


@pytest.fixture
def race_app(database_url):
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_pool_card_race") as app:
        yield app


@pytest.mark.postgres
@pytest.mark.parametrize("webhook_comes", ["between_row_and_stripe", "while_stripe_is_asked"])
def test_a_dashboard_refund_webhook_racing_the_return_job_never_returns_the_same_money_twice(
        race_app, monkeypatch, webhook_comes):
    from marketplace.payments import stripe_client
    from marketplace.standins.stripe import LocalStripe
    from marketplace.timeutil import utcnow

    stripe_api = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe_api.url)
    try:
        with race_app.app_context():
            world = PoolWorld(f"dash{webhook_comes[:5]}")
            now = utcnow()
            pool = pools.create_pool(world.sponsor, name="Card race", currency="USD", budget_minor=40000,
                                     starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1))
            rails.start_checkout(pool.id, success_url="http://localhost/s", cancel_url="http://localhost/c")
            paid = stripe_api.pay(pool.checkout_session_id)
            rails.card_paid(pool, paid["id"], paid["payment_intent"], Money(40000, "USD"))
            pools.end_due(now + timedelta(days=1, seconds=1))
            ledger.account(AccountKind.sponsor_returns, pool_id=pool.id)
            db.session.commit()
            pool_id, intent = pool.id, paid["payment_intent"]
            db.session.remove()
        dashboard = stripe_api.create_refund({"payment_intent": intent, "amount": "5000"}, "dash-race")

        row_committed, asking, webhook_done = threading.Event(), threading.Event(), threading.Event()
        create_refund = stripe_client.create_refund

        def slow_create_refund(*args, **kwargs):
            asking.set()
            webhook_done.wait(0.5)  # the webhook waits for our pool lock meanwhile
            return create_refund(*args, **kwargs)

        monkeypatch.setattr(stripe_client, "create_refund", slow_create_refund)

        def job():
            with race_app.app_context():
                try:
                    row_id = rails.begin_card_return(pool_id)
                    db.session.commit()
                    row_committed.set()
                    if webhook_comes == "between_row_and_stripe":
                        webhook_done.wait(5)
                    sent = row_id is not None and rails.send_card_return(row_id)
                    db.session.commit()
                    return sent
                finally:
                    db.session.remove()

        def webhook():
            (row_committed if webhook_comes == "between_row_and_stripe" else asking).wait(5)
            with race_app.app_context():
                try:
                    pool = db.session.get(MatchingPool, pool_id)
                    booked = rails.returned_elsewhere(pool, 5000, key=dashboard["id"], why="refunded in Stripe")
                    db.session.commit()
                    return booked
                except pools.PoolError:
                    db.session.rollback()
                    return "for a person"
                finally:
                    webhook_done.set()
                    db.session.remove()

        results: dict[str, object] = {}
        threads = [threading.Thread(target=lambda f=f: results.__setitem__(f.__name__, f())) for f in (job, webhook)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)

        with race_app.app_context():
            pool = db.session.get(MatchingPool, pool_id)
            rows = list(db.session.scalars(select(PoolRefund).where(PoolRefund.pool_id == pool_id)))
            assert check() == []
            assert held(pool) >= 0
            if webhook_comes == "between_row_and_stripe":
                # Our row was never sent: withdrawn; the dashboard refund booked; the job sends nothing.
                assert results == {"job": False, "webhook": True}
                assert rows == [] and (pool.returned_minor, held(pool)) == (5000, 35000)
                assert rails.return_due() == {"refunded": [pool_id], "waiting": []}
                db.session.commit()
                db.session.refresh(pool)
                assert (pool.returned_minor, held(pool)) == (40000, 0)
                assert stripe_api.charge_of(intent)["amount_refunded"] == 40000
            else:
                # Stripe made ours while the webhook waited for the lock: ours is booked, the other is a person's.
                assert results == {"job": True, "webhook": "for a person"}
                assert [(r.state, r.amount_minor) for r in rows] == [(PoolRefundState.succeeded, 40000)]
                assert (pool.returned_minor, held(pool)) == (40000, 0)
            assert check() == []
    finally:
        race_app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        stripe_api.stop()
