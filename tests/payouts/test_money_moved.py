"""Amounts come from the money that moved: a dispute lost costs the sum of its
balance transactions' net; a refund after payout can give back the whole
pledge, the fee as its own ledger line."""
from __future__ import annotations

import pytest

from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.payments import stripe_client
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail, ShareState
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.timeutil import utcnow
from tests.payments.test_stripe_events import post_event, stripe_object
from tests.payouts.helpers import AFTER_WINDOW, balance, escrow
from tests.payouts.test_payout_transfers import connected, merged_and_approved, stripe_api  # noqa: F401


def _dispute(pledge: Pledge, status: str, balance_transactions: list) -> dict:
    dispute = stripe_object("dispute")  # recorded: stripe/openapi fixtures (tests/fixtures/README.md)
    dispute.update(id="dp_fee", amount=6500, currency="usd", payment_intent=pledge.payment_intent_id,
                   status=status, balance_transactions=balance_transactions)
    return dispute


def _balance_transaction(**fields) -> dict:
    txn = stripe_object("balance_transaction")  # recorded, then given this scenario's money
    txn.update(type="adjustment", **fields)
    return txn


# A dispute's withdrawal: the disputed 65.00 and a 0.12 dispute fee.
WITHDRAWAL = _balance_transaction(
    id="txn_dp_fee_1", amount=-6500, fee=12, net=-6512, currency="usd", reporting_category="dispute",
    fee_details=[{"amount": 12, "application": None, "currency": "usd", "description": "Dispute fee",
                  "type": "stripe_fee"}])


def _paid_out_manually(world, number: int, amount: int) -> Pledge:
    ama = world.implementor(f"ama{number}@example.org", github_id=7000 + number)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    item = world.issue(number)
    pledge = world.fund(item, amount)
    world.claim(item, ama)
    world.pull(number + 1000, f"Fixes #{number}", author_id=7000 + number, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    return pledge


def test_dispute_lost_after_payout_with_a_dispute_fee_is_a_loss_of_6512_once(world, client):
    pledge = _paid_out_manually(world, 401, 6500)
    post_event(client, "charge.dispute.created", _dispute(pledge, "needs_response", [WITHDRAWAL]), "evt_fee_1")
    # The same balance transaction twice in one event, and the event delivered twice: counted once.
    closed = _dispute(pledge, "lost", [WITHDRAWAL, dict(WITHDRAWAL)])
    for event_id in ("evt_fee_2", "evt_fee_2", "evt_fee_3"):
        post_event(client, "charge.dispute.closed", closed, event_id)
    assert balance(AccountKind.commons_funds) == -6512
    assert balance(AccountKind.disputes) == 6500
    assert balance(AccountKind.stripe_fees) == 12
    assert world.session.get(Pledge, pledge.id).refunded_minor == 6500
    assert client.get("/api/v1/ledger").get_json()["totals"]["USD"]["lost"] == 6512
    assert check() == []


def test_dispute_lost_before_payout_takes_the_escrow_and_the_fee_from_the_commons(world, client):
    item = world.issue(402)
    pledge = world.fund(item, 6500)
    world.session.commit()
    post_event(client, "charge.dispute.created", _dispute(pledge, "needs_response", []), "evt_fee_b1")
    post_event(client, "charge.dispute.closed", _dispute(pledge, "lost", [WITHDRAWAL]), "evt_fee_b2")
    post_event(client, "charge.dispute.closed", _dispute(pledge, "lost", [WITHDRAWAL]), "evt_fee_b3")
    world.session.expire_all()
    assert (world.session.get(Pledge, pledge.id).state, escrow(item.id)) == (PledgeState.refunded, 0)
    assert balance(AccountKind.disputes) + balance(AccountKind.stripe_fees) == 6512
    assert balance(AccountKind.commons_funds) == -12
    assert check() == []


def test_dispute_won_keeps_only_the_fee_stripe_did_not_give_back(world, client):
    item = world.issue(406)
    pledge = world.fund(item, 6500)
    world.session.commit()
    reinstated = _balance_transaction(id="txn_dp_fee_2", amount=6500, fee=0, net=6500, currency="usd",
                                      reporting_category="dispute_reversal")
    post_event(client, "charge.dispute.created", _dispute(pledge, "needs_response", [WITHDRAWAL]), "evt_won_1")
    for event_id in ("evt_won_2", "evt_won_2", "evt_won_3"):
        post_event(client, "charge.dispute.closed", _dispute(pledge, "won", [WITHDRAWAL, reinstated]), event_id)
    world.session.expire_all()
    assert (world.session.get(Pledge, pledge.id).state, escrow(item.id)) == (PledgeState.held, 6500)
    assert (balance(AccountKind.stripe_fees), balance(AccountKind.commons_funds)) == (12, -12)
    assert balance(AccountKind.disputes) == 0
    assert check() == []


def _paid_by_stripe(world, stripe_api, number: int):
    ama = world.implementor(f"ama{number}@example.org", github_id=7000 + number)
    connected(world, stripe_api, ama, active=True)
    payout = merged_and_approved(world, number, 10000, ama, 7000 + number)
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    if share.state is not ShareState.paid:
        assert payouts.transfer(share.id)
    [pledge] = [c.pledge for c in payout.covered]
    return pledge, share, payout


def test_refund_after_payout_gives_back_the_whole_100_reversing_90_and_the_10_fee(world, stripe_api):
    pledge, share, payout = _paid_by_stripe(world, stripe_api, 403)
    assert (payout.gross_minor, payout.fee_minor, share.amount_minor) == (10000, 1000, 9000)
    assert balance(AccountKind.platform_fees) == 1000
    after_payout.refund_after_payout(pledge.id, 10000, path="reversal", share_id=share.id, admin=world.admin,
                                seen_refunded_minor=0)
    [transfer] = stripe_api.transfers.values()
    assert (transfer["amount_reversed"], [r["amount"] for r in transfer["reversals"]["data"]]) == (9000, [9000])
    [refund] = stripe_api.refunds.values()
    assert refund["amount"] == 10000
    assert balance(AccountKind.refunds) == 10000
    assert balance(AccountKind.platform_fees) == 0
    assert (balance(AccountKind.payouts_paid), balance(AccountKind.commons_funds)) == (0, 0)
    assert (world.session.get(Pledge, pledge.id).refunded_minor, payout.fee_refunded_minor) == (10000, 1000)
    # The fee went back as its own ledger line of the refund.
    from sqlalchemy import select

    from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction

    lines = world.session.execute(
        select(LedgerAccount.kind, LedgerEntry.amount_minor).join(LedgerEntry.account)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerTransaction.idempotency_key == f"refund:{refund['id']}")).all()
    assert sorted(lines) == sorted([(AccountKind.commons_funds, -9000), (AccountKind.platform_fees, -1000),
                                    (AccountKind.refunds, 10000)])
    assert check() == []


def test_refund_after_payout_whose_reversal_stripe_refuses_records_nothing(world, stripe_api):
    pledge, share, payout = _paid_by_stripe(world, stripe_api, 404)
    stripe_api.transfers.clear()  # Stripe answers 404 for the transfer
    with pytest.raises(stripe_client.TransferRefused):
        after_payout.refund_after_payout(pledge.id, 10000, path="reversal", share_id=share.id, admin=world.admin,
                                    seen_refunded_minor=0)
    assert stripe_api.refunds == {}
    assert (balance(AccountKind.refunds), balance(AccountKind.platform_fees)) == (0, 1000)
    assert (world.session.get(Pledge, pledge.id).refunded_minor, payout.fee_refunded_minor) == (0, 0)
    assert check() == []


def test_refund_after_payout_of_more_than_the_pledge_is_refused(world, stripe_api):
    pledge, share, payout = _paid_by_stripe(world, stripe_api, 405)
    with pytest.raises(payouts.PayoutError):
        after_payout.refund_after_payout(pledge.id, 10001, path="reversal", share_id=share.id, admin=world.admin,
                                    seen_refunded_minor=0)
    assert balance(AccountKind.refunds) == 0 and stripe_api.refunds == {}


def test_refund_after_payout_after_a_partial_one_refuses_more_than_the_pledge_has_left(world, stripe_api):
    pledge, share, payout = _paid_by_stripe(world, stripe_api, 406)
    after_payout.refund_after_payout(pledge.id, 4000, path="receivable", share_id=share.id, admin=world.admin,
                                seen_refunded_minor=0)
    assert world.session.get(Pledge, pledge.id).refunded_minor == 4000
    with pytest.raises(payouts.PayoutError, match="at most what the pledge has not had back"):
        after_payout.refund_after_payout(pledge.id, 6001, path="receivable", share_id=share.id, admin=world.admin,
                                    seen_refunded_minor=4000)
    assert world.session.get(Pledge, pledge.id).refunded_minor == 4000
    assert balance(AccountKind.refunds) == 4000 and len(stripe_api.refunds) == 1
    assert check() == []
