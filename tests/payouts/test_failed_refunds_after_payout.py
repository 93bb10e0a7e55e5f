"""Attacks on refunds that fail after the pledge's money moved on (a break
session after issue 10): the rest of the pledge was paid out."""
from __future__ import annotations

from sqlalchemy import func, select

from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind, LedgerTransaction
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail, RefundFailure
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user
from tests.payments.test_stripe_events import post_event
from tests.payouts.helpers import AFTER_WINDOW, balance, escrow


def _failed_refund(pledge: Pledge, refund_id: str, amount: int) -> dict:
    return {"id": refund_id, "object": "refund", "amount": amount, "currency": "usd", "status": "failed",
            "failure_reason": "expired_or_canceled_card", "payment_intent": pledge.payment_intent_id,
            "metadata": {"pledge_id": str(pledge.id)}}


def _partly_refunded_then_paid_out(world, number: int, rail: Rail = Rail.card):
    ama = world.implementor(f"ama{number}@example.org", github_id=7000 + number)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    item = world.issue(number)
    pledge = world.fund(item, 5000)
    pledge.rail = rail
    assert pledges.refund(pledge.id, 2000, refund_id="re_before_payout", actor="stripe")
    world.claim(item, ama)
    world.pull(number + 1000, f"Fixes #{number}", author_id=7000 + number, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    world.session.commit()
    return pledge, payout, item


def test_a_refund_that_fails_after_the_rest_was_paid_out_is_booked_back_with_the_commons_once(world, client, app):
    """50.00 held, 20.00 refunded, the other 30.00 paid out; then Stripe reports the
    20.00 refund failed. Before: only a flag reading "$0.00 held again", while the
    ledger still said the funder had the 20.00. Now the 20.00 is in the commons'
    funds, owed to the funder, and the pledge no longer counts it as refunded."""
    pledge, payout, item = _partly_refunded_then_paid_out(world, 611)
    assert (payout.gross_minor, world.session.get(Pledge, pledge.id).state) == (3000, PledgeState.released)
    assert (balance(AccountKind.refunds), balance(AccountKind.commons_funds)) == (2000, 0)
    for event_id in ("evt_failed_late", "evt_failed_late_again"):
        post_event(client, "refund.failed", _failed_refund(pledge, "re_before_payout", 2000), event_id)
    pledge = world.session.get(Pledge, pledge.id)
    world.session.refresh(pledge)
    assert (pledge.state, pledge.refunded_minor, escrow(item.id)) == (PledgeState.released, 0, 0)
    assert (balance(AccountKind.refunds), balance(AccountKind.commons_funds)) == (0, 2000)
    assert world.session.scalars(select(RefundFailure)).one().amount_minor == 2000
    assert world.session.scalar(select(func.count()).where(LedgerTransaction.kind == "refund_failed")) == 1
    admin = world.user("admin611@example.org", admin=True)
    world.session.commit()
    page = as_user(app, admin).get("/admin/pledges")
    assert ("Refund re_before_payout failed (expired_or_canceled_card) after the pledge was paid out: $20.00 came "
            "back to the commons' funds and is owed to the funder.") in page.get_data(as_text=True)
    assert check() == []


def test_a_refund_after_payout_that_fails_is_booked_back_with_the_commons(world, client):
    """The admin's refund after payout (receivable path, 10.00 of the 30.00 paid
    out; a bank-transfer pledge, so no Stripe is needed here) is reported failed:
    its 10.00 is the commons' again, owed to the funder. (It never left escrow:
    reading the failed refund's escrow lines, as before, found 0.)"""
    pledge, payout, item = _partly_refunded_then_paid_out(world, 612, Rail.bank_transfer)
    [share] = payout.shares
    admin = world.user("admin612@example.org", admin=True)
    payouts.record_manual_payout(share.id, reference="HOST-612", paid_on=utcnow().date(), admin=admin)
    refund_id = after_payout.refund_after_payout(pledge.id, 1000, path="receivable", share_id=share.id, admin=admin,
                                            offline_reference="BANK-612")
    world.session.commit()
    assert balance(AccountKind.refunds) == 3000
    assert pledges.undo_failed_refund(pledge.id, refund_id, reason="account closed", actor="admin")
    world.session.commit()
    pledge = world.session.get(Pledge, pledge.id)
    world.session.refresh(pledge)
    assert (pledge.state, pledge.refunded_minor) == (PledgeState.released, 2000)
    assert (balance(AccountKind.refunds), balance(AccountKind.commons_funds)) == (2000, 1000)
    assert check() == []


def test_a_refund_that_fails_after_the_pledge_moved_comes_back_to_where_the_pledge_is_now(world, client):
    """40.00 held on a duplicate item, 15.00 refunded there, the other 25.00 moved by
    the funder to where the work went; then the 15.00 refund fails: the pledge
    holds 40.00 again, on the item it is on now, and the old item's escrow stays 0."""
    from marketplace.backlog.ending import name_work_target
    from marketplace.backlog.models import BacklogItem
    from tests.backlog.test_forge_endings import close_github

    item, target = world.issue(621), world.issue(622)
    pledge = world.fund(item, 4000)
    assert pledges.refund(pledge.id, 1500, refund_id="re_before_move", actor="stripe")
    close_github(world, item, "duplicate")
    name_work_target(world.session.get(BacklogItem, item.id), target, actor="test")
    pledges.move_to_target(pledge.id, funder_id=world.funder.id, actor="test")
    world.session.commit()
    assert (escrow(item.id), escrow(target.id)) == (0, 2500)
    post_event(client, "refund.failed", _failed_refund(pledge, "re_before_move", 1500), "evt_failed_moved")
    pledge = world.session.get(Pledge, pledge.id)
    world.session.refresh(pledge)
    assert (pledge.item_id, pledge.state, pledge.refunded_minor) == (target.id, PledgeState.held, 0)
    assert (escrow(item.id), escrow(target.id)) == (0, 4000)
    assert check() == []
