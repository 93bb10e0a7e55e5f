"""Money races of a break session after issue 10, each in two real PostgreSQL
sessions committing for real: a funder cancelling an unpaid pledge while its
Checkout completes, and refund failures delivered at the same moment."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.backlog.models import BacklogItem
from marketplace.extensions import db
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.payments import stripe_client
from marketplace.payments.stripe_events import hold_paid_session
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail, RefundFailure
from tests.payouts.helpers import escrow
from tests.payouts.test_claim_races import seed
from tests.races import at_once


@pytest.fixture
def local_stripe(race_app):
    from marketplace.standins.stripe import LocalStripe

    stripe = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe.url)
    yield stripe
    race_app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    stripe.stop()


def _card_pledge(race_app, amount: int) -> tuple[int, int, str]:
    with race_app.app_context():
        [item_id], [funder_id] = seed(1, 1)
        pledge = pledges.create(db.session.get(BacklogItem, item_id), funder_id, Money(amount, "USD"),
                                rail=Rail.card, actor="test")
        session_id, _url = stripe_client.create_checkout_session(
            pledge.id, Money(amount, "USD"), item_title="Race 1", success_url="http://local/ok",
            cancel_url="http://local/cancel")
        pledge.checkout_session_id = session_id
        db.session.commit()
        pledge_id = pledge.id
        db.session.remove()
    return pledge_id, item_id, session_id


def _in_app(race_app, call):
    def run():
        with race_app.app_context():
            try:
                result = call()
                db.session.commit()
                return result
            except pledges.PledgeError as exc:
                db.session.rollback()
                return f"refused: {exc}"
            finally:
                db.session.remove()
    return run


@pytest.mark.postgres
def test_a_funder_cancelling_while_the_checkout_completes_leaves_the_5000_held_once(race_app, local_stripe):
    pledge_id, item_id, session_id = _card_pledge(race_app, 5000)
    paid = local_stripe.pay(session_id)  # the funder paid on Stripe's page a moment before pressing cancel
    outcomes = at_once(_in_app(race_app, lambda: pledges.cancel_unpaid(pledge_id, actor="funder")),
                       _in_app(race_app, lambda: hold_paid_session(paid)))
    assert f"pledge {pledge_id} held" in outcomes
    [cancel] = [o for o in outcomes if o != f"pledge {pledge_id} held"]
    # Cancel first: Stripe refuses to expire a paid session. Hold first: nothing is left to cancel.
    assert cancel in (False, "refused: This pledge was paid already; the payment is being confirmed.")
    with race_app.app_context():
        pledge = db.session.get(Pledge, pledge_id)
        assert (pledge.state, escrow(item_id)) == (PledgeState.held, 5000)
        assert local_stripe.sessions[session_id]["status"] == "complete"
        assert check() == []


@pytest.mark.postgres
def test_two_refund_failures_delivered_at_once_give_back_each_refund_once(race_app, local_stripe):
    pledge_id, item_id, session_id = _card_pledge(race_app, 5000)
    paid = local_stripe.pay(session_id)
    with race_app.app_context():
        hold_paid_session(paid)
        refund_ids = []
        for amount in (2000, 3000):
            refund_ids.append(stripe_client.create_refund(paid["payment_intent"], Money(amount, "USD"),
                                                          idempotency_key=f"race-{amount}", pledge_id=pledge_id))
            assert pledges.refund(pledge_id, amount, refund_id=refund_ids[-1], actor="stripe")
        db.session.commit()
        assert escrow(item_id) == 0
        db.session.remove()
    first, second = refund_ids

    def fail(refund_id):
        return _in_app(race_app, lambda: pledges.undo_failed_refund(pledge_id, refund_id, reason="card closed",
                                                                    actor="stripe"))

    # The same failure twice at once (a redelivery under another event id), then two failures at once.
    assert sorted(at_once(fail(first), fail(first))) == [False, True]
    assert sorted(at_once(fail(first), fail(second))) == [False, True]
    with race_app.app_context():
        pledge = db.session.get(Pledge, pledge_id)
        assert (pledge.state, pledge.refunded_minor, escrow(item_id)) == (PledgeState.held, 0, 5000)
        assert db.session.scalar(select(func.count()).select_from(RefundFailure)) == 2
        assert check() == []
