"""Issue 20: a funder's receipt when money is received, a refund receipt, and what
the money paid for when the payout executes — each once per event."""
from __future__ import annotations

from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Rail
from marketplace.roles import service as roles
from tests.payouts.helpers import AFTER_WINDOW
from tests.roles.helpers import last_id, mails


def test_receipt_names_amount_item_reference_and_the_fiscal_host_once(app, world, session):
    app.config["FISCAL_HOST_NAME"] = "Open Source Center Ltd"
    try:
        item = world.issue(801)
        before = last_id(session)
        pledge = pledges.create(item, world.funder.id, Money(2500, "USD"), rail=Rail.card, actor="test")
        pledge.payment_intent_id = "pi_receipt_801"
        assert pledges.mark_received(pledge.id, Money(2500, "USD"), actor="stripe")
        # The same event again (a replayed webhook, the success page racing it): no second receipt.
        assert not pledges.mark_received(pledge.id, Money(2500, "USD"), actor="stripe")
        assert roles.receipt(pledge) is False
        [receipt] = mails(session, before, "funder@example.org")
    finally:
        app.config["FISCAL_HOST_NAME"] = None
    assert receipt.subject == 'Receipt: $25.00 received for "Issue 801"'
    assert "Amount: $25.00" in receipt.body and "Item: Issue 801" in receipt.body
    assert "Reference: pi_receipt_801" in receipt.body
    assert "Received by: Open Source Center Ltd" in receipt.body


def test_a_replayed_checkout_webhook_sends_one_receipt(client, session):
    from sqlalchemy import select

    from marketplace.pledges.models import Pledge
    from tests.accounts.helpers import signup
    from tests.payments.fake_stripe import FakeStripe
    from tests.payments.test_checkout import an_item, pledge_through_the_page
    from tests.payments.test_stripe_events import post_event

    fake = FakeStripe()
    app = client.application
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=fake.url)
    try:
        item = an_item(session)
        signup(client, "payer@example.org", "Payer", funder=True)
        pledge_through_the_page(client, item, "50.00")
        pledge = session.scalars(select(Pledge)).one()
        before = last_id(session)
        paid = fake.pay(pledge.checkout_session_id)
        assert post_event(client, "checkout.session.completed", paid, "evt_receipt_1").status_code == 202
        post_event(client, "checkout.session.completed", paid, "evt_receipt_1")  # the same delivery again
        post_event(client, "checkout.session.completed", paid, "evt_receipt_2")  # the same payment, a new event id
    finally:
        app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        fake.stop()
    receipts = [m for m in mails(session, before, "payer@example.org") if m.subject.startswith("Receipt")]
    assert [m.subject for m in receipts] == [f'Receipt: $50.00 received for "{item.title}"']


def test_a_self_service_refund_sends_a_refund_receipt_once(world, session):
    item = world.issue(802)
    pledge = world.fund(item, 4000)
    before = last_id(session)
    pledges.refund(pledge.id, 1500, refund_id="re_part_1", actor="test")
    assert not pledges.refund(pledge.id, 1500, refund_id="re_part_1", actor="test")  # replayed: nothing
    pledges.refund(pledge.id, 2500, refund_id="re_part_2", actor="test")
    sent = [m for m in mails(session, before, "funder@example.org")]
    assert [m.subject for m in sent] == ["Refund: $15.00 sent back to you", "Refund: $25.00 sent back to you"]
    assert "Reference: re_part_1" in sent[0].body and "Item: Issue 802" in sent[0].body
    assert check() == []


def test_funders_are_told_what_their_money_paid_for_once(world, session):
    item = world.issue(803)
    ama = world.implementor("ama@example.org", github_id=9101)
    world.claim(item, ama)
    world.fund(item, 2500)
    world.pull(1803, "Fixes #803", author_id=9101, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    before = last_id(session)
    now = payout.execute_after + AFTER_WINDOW
    assert payouts.execute(payout.id, now)
    assert not payouts.execute(payout.id, now)
    assert roles.tell_paid(payout) == 0  # a second run of the notice: nothing more
    [told] = mails(session, before, "funder@example.org")
    assert told.subject == 'Your pledge paid for "Issue 803"'
    assert 'Your $25.00 paid for PR #1803 by ama, which solved "Issue 803".' in told.body
    assert check() == []
