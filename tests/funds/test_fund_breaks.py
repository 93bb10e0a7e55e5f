"""Project funds attacked as the outside world would (breaker pass): a close
written by another worker while an allotment is being decided, Stripe taking
an invoice's money back (refund, lost chargeback) before and after the fund
allotted it, malformed and hostile events and forms, attribution rounding
with many subscribers, and strangers acting on a subscription. ``flask
ledger check`` runs after each test (the ``session`` fixture)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.funds import service as funds
from marketplace.funds.models import SubscriptionRail
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus
from tests.funds.helpers import escrow, fund_balance


def _bank(fw, amounts, prefix="b"):
    subs = []
    for n, amount in enumerate(amounts):
        sub = funds.subscribe(fw.fund, fw.user(f"{prefix}{n}@example.org"), amount,
                              rail=SubscriptionRail.bank_transfer)
        assert funds.record_transfer(sub.id, Money(amount, "USD"), reference=f"{prefix}-{n}",
                                     received_on=utcnow().date(), actor=fw.admin)
        subs.append(sub)
    return subs


def test_an_allotment_decided_on_an_item_another_worker_just_closed_is_refused(fw, session):
    """The maintainer's request loaded the item open; the forge's close was
    written (by another worker) before the allotment took its locks: the
    allotment reads the item again under its row lock and is refused."""
    _bank(fw, [3000])
    item = fw.issue(401)
    assert item.state is ItemState.open
    session.execute(update(BacklogItem).where(BacklogItem.id == item.id)
                    .values(state=ItemState.closed).execution_options(synchronize_session=False))
    assert item.state is ItemState.open  # what the request still has in hand
    with pytest.raises(funds.FundError, match="takes no new money"):
        funds.allot(fw.fund.id, item, 1000, reason="stale", maintainer=fw.maintainer)
    assert (fund_balance(fw.fund), escrow(item.id)) == (3000, 0)


# --- Stripe takes an invoice's money back ---------------------------------------------

def _card(fw, email, amount):
    sub = fw.subscribe(fw.user(email), amount)
    fw.start(sub)
    return sub


def _intent(fw, sub) -> str:
    return next(i["payment_intent"] for i in fw.stripe.invoices.values()
                if i["subscription"] == fw.stripe_subscription(sub))


def _refund_at_stripe(fw, intent: str, amount: int) -> dict:
    """A refund made in Stripe's dashboard; returns the charge as ``charge.refunded`` carries it."""
    fw.stripe.create_refund({"payment_intent": intent, "amount": str(amount)}, None)
    return fw.stripe.charge_of(intent)


def test_an_invoice_refunded_at_stripe_leaves_the_fund_once(fw, session):
    sub = _card(fw, "refunded@example.org", 2000)
    assert fund_balance(fw.fund) == 2000
    charge = _refund_at_stripe(fw, _intent(fw, sub), 800)
    first = fw.deliver("charge.refunded", charge)
    again = fw.deliver("charge.refunded", charge)  # redelivered under a new event id
    assert (first.status, again.status) == (DeliveryStatus.processed, DeliveryStatus.processed)
    assert fund_balance(fw.fund) == 1200
    assert funds.subscription_parts(fw.fund) == {sub.id: 1200}
    # A second refund of the rest: the fund ends empty, the invoice fully taken back.
    fw.deliver("charge.refunded", _refund_at_stripe(fw, _intent(fw, sub), 1200))
    assert fund_balance(fw.fund) == 0 and funds.subscription_parts(fw.fund) == {}
    assert check() == []


def test_an_invoice_refunded_after_the_fund_allotted_it_is_covered_by_the_commons(fw, session):
    """A 20.00 + B 10.00; 25.00 allotted to X (A 16.67, B 8.33); A's invoice
    refunded at Stripe: the fund pays the 5.00 it holds, the commons covers
    15.00 (flagged), X's escrow keeps its 25.00; the next allotment is B's money alone."""
    from marketplace.audit.models import AuditEvent
    from marketplace.ledger import service as ledger
    from marketplace.ledger.models import AccountKind

    a = _card(fw, "a@example.org", 2000)
    b = _card(fw, "b@example.org", 1000)
    x = fw.issue(402)
    funds.allot(fw.fund.id, x, 2500, reason="X", maintainer=fw.maintainer)
    fw.deliver("charge.refunded", _refund_at_stripe(fw, _intent(fw, a), 2000))
    assert (fund_balance(fw.fund), escrow(x.id)) == (0, 2500)
    assert ledger.balance(ledger.account(AccountKind.commons_funds), "USD") == -1500
    assert ledger.balance(ledger.account(AccountKind.subscriber_refunds, fund_id=fw.fund.id), "USD") == 2000
    assert session.scalar(select(AuditEvent.details).where(AuditEvent.action == "fund.taken_back_uncovered")) \
        == {"receipt": session.scalar(select(funds.FundReceipt.id).where(funds.FundReceipt.subscription_id == a.id)),
            "key": session.scalar(select(AuditEvent.details).where(AuditEvent.action == "fund.taken_back"))["key"],
            "covered_minor": 1500}
    fw.bill(b)
    assert fund_balance(fw.fund) == 1000
    y = fw.issue(403)
    allotment = funds.allot(fw.fund.id, y, 1000, reason="Y", maintainer=fw.maintainer)
    assert {s.subscription_id: s.amount_minor for s in allotment.attributions} == {b.id: 1000}
    assert check() == []


def test_a_lost_chargeback_on_an_invoice_takes_it_back_and_an_open_one_moves_nothing(fw, session):
    sub = _card(fw, "chargeback@example.org", 3000)
    intent = _intent(fw, sub)
    opened = fw.deliver("charge.dispute.created", fw.stripe.dispute(intent))
    assert opened.status is DeliveryStatus.processed and fund_balance(fw.fund) == 3000
    lost = fw.stripe.dispute(intent, status="lost")
    fw.deliver("charge.dispute.closed", lost)
    fw.deliver("charge.dispute.closed", lost)
    assert fund_balance(fw.fund) == 0


def test_a_refund_before_its_invoice_paid_waits_then_applies(app, fw, session):
    from jobs.webhooks import retry_waiting_deliveries

    sub = fw.subscribe(fw.user("early-refund@example.org"), 2000)
    checkout, created, paid = fw.first_events(sub)
    charge = _refund_at_stripe(fw, paid[1]["payment_intent"], 2000)
    waiting = fw.deliver("charge.refunded", charge)
    assert waiting.status is DeliveryStatus.waiting
    for event in (checkout, created, paid):
        fw.deliver(*event)
    assert fund_balance(fw.fund) == 2000
    retry_waiting_deliveries()
    session.refresh(waiting)
    assert waiting.status is DeliveryStatus.processed
    assert fund_balance(fw.fund) == 0


def test_our_own_return_refund_reported_by_stripe_is_not_taken_twice(fw, session):
    from marketplace.funds import rails

    sub = _card(fw, "leaving@example.org", 2000)
    (row,) = funds.close_fund(fw.fund.id, actor=fw.admin)
    assert rails.refund_return(row.id)
    assert fund_balance(fw.fund) == 0
    delivery = fw.deliver("charge.refunded", fw.stripe.charge_of(_intent(fw, sub)))
    assert delivery.status is DeliveryStatus.processed
    assert fund_balance(fw.fund) == 0
    assert check() == []


def test_a_refund_in_another_currency_than_the_invoice_is_failed_for_a_person(fw, session):
    sub = _card(fw, "eur-refund@example.org", 2000)
    charge = _refund_at_stripe(fw, _intent(fw, sub), 500)
    charge["refunds"]["data"][0]["currency"] = "eur"
    delivery = fw.deliver("charge.refunded", charge)
    assert delivery.status is DeliveryStatus.failed and "EUR" in delivery.outcome
    assert fund_balance(fw.fund) == 2000
