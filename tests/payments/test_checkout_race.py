"""The success page and the webhook confirming one payment at the same moment, on real PostgreSQL."""
import threading

import pytest
from sqlalchemy import delete, func, select

from marketplace.accounts.models import User
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.extensions import db
from marketplace.ledger import summary as ledger_summary
from marketplace.ledger.check import check
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.webhooks.models import WebhookDelivery
from tests.payments.fake_stripe import FakeStripe
from tests.payments.test_stripe_events import post_event


@pytest.mark.postgres
def test_webhook_twice_and_success_page_at_once_hold_one_pledge_once(app):
    fake = FakeStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=fake.url)
    try:
        with app.app_context():
            user = User(display_name="Racer")
            user.set_email("checkout-racer@example.org")
            db.session.add(user)
            db.session.flush()
            item = db.session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
            pledge = pledges.create(item, user.id, Money(5000, "USD"), rail=Rail.card, actor="test")
            db.session.flush()
            session_obj = fake._create_session({"line_items[0][price_data][unit_amount]": "5000",
                                                "line_items[0][price_data][currency]": "usd",
                                                "client_reference_id": str(pledge.id),
                                                "metadata[pledge_id]": str(pledge.id)}, None)
            pledge.checkout_session_id = session_obj["id"]
            db.session.commit()
            pledge_id, user_id, item_id = pledge.id, user.id, item.id
            db.session.remove()
        paid = fake.pay(session_obj["id"])
        barrier = threading.Barrier(3)
        statuses = []

        def webhook(event_id):
            client = app.test_client()
            barrier.wait()
            with app.app_context():
                statuses.append(post_event(client, "checkout.session.completed", paid, event_id).status_code)

        def success_page():
            client = app.test_client()
            with client.session_transaction() as flask_session:
                with app.app_context():
                    flask_session["_user_id"] = db.session.get(User, user_id).get_id()
                    db.session.remove()
            barrier.wait()
            with app.app_context():
                statuses.append(client.get(f"/pledges/{pledge_id}/thanks",
                                           query_string={"session_id": session_obj["id"]}).status_code)

        threads = [threading.Thread(target=webhook, args=("evt_race_a",)),
                   threading.Thread(target=webhook, args=("evt_race_b",)),
                   threading.Thread(target=success_page)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(statuses) == [202, 202, 302]
        with app.app_context():
            assert db.session.get(Pledge, pledge_id).state is PledgeState.held
            assert db.session.scalar(select(func.count()).select_from(Pledge).where(Pledge.funder_id == user_id)) == 1
            assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
            assert db.session.get(ItemFunding, (item_id, "USD")).held_minor == 5000
            assert check() == []
    finally:
        fake.stop()
        app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        with app.app_context():
            db.session.execute(delete(LedgerEntry))
            db.session.execute(delete(LedgerTransaction))
            db.session.execute(delete(LedgerAccount))
            db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.delivery_id.in_(["evt_race_a", "evt_race_b"])))
            db.session.execute(delete(Pledge).where(Pledge.funder_id == user_id))
            db.session.execute(delete(ItemFunding).where(ItemFunding.item_id == item_id))
            db.session.execute(delete(AuditEvent).where(AuditEvent.object_type == "pledge"))
            db.session.execute(delete(User).where(User.id == user_id))
            ledger_summary.refresh()  # this test committed for real: the stored totals follow
            db.session.commit()
            db.session.remove()
