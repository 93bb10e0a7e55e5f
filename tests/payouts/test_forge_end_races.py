"""An item deleted on the forge, ended by two workers at once (a redelivery and
the reconciliation) in two real PostgreSQL sessions: its pledge is refunded once."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.audit.models import AuditEvent
from marketplace.backlog import ending
from marketplace.backlog.models import BacklogItem
from marketplace.extensions import db
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.timeutil import utcnow
from tests.payouts.helpers import escrow
from tests.payouts.test_claim_races import seed
from tests.races import at_once


@pytest.mark.postgres
def test_two_workers_ending_a_deleted_item_at_once_refund_its_3000_once(race_app):
    from marketplace.standins.stripe import LocalStripe

    stripe = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe.url)
    try:
        with race_app.app_context():
            [item_id], [funder_id] = seed(1, 1)
            pledge = pledges.create(db.session.get(BacklogItem, item_id), funder_id, Money(3000, "USD"),
                                    rail=Rail.card, actor="test")
            pledge.payment_intent_id = f"pi_race_{pledge.id}"
            pledges.mark_received(pledge.id, Money(3000, "USD"), actor="test")
            pledge_id = pledge.id
            db.session.commit()
            db.session.remove()

        def end():
            with race_app.app_context():
                try:
                    refunded = ending.end_item(db.session.get(BacklogItem, item_id), utcnow(), actor="test")
                    db.session.commit()
                    return refunded
                finally:
                    db.session.remove()

        assert sorted(at_once(end, end)) == [[], [pledge_id]]
        with race_app.app_context():
            pledge = db.session.get(Pledge, pledge_id)
            assert (pledge.state, pledge.refunded_minor) == (PledgeState.refunded, 3000)
            assert escrow(item_id) == 0
            assert db.session.scalar(select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "item.ended", AuditEvent.object_id == str(item_id))) == 1
            assert check() == []
    finally:
        race_app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        stripe.stop()
