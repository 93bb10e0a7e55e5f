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
from marketplace.funds.models import Allotment, AllotmentAttribution, SubscriptionRail, SubscriptionState
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
    refunded at Stripe: the fund pays A's 3.33 still in it (B's 1.67 stays
    B's), the commons covers 16.67 (flagged), X's escrow keeps its 25.00; the
    next allotment is B's money alone."""
    from marketplace.audit.models import AuditEvent
    from marketplace.ledger import service as ledger
    from marketplace.ledger.models import AccountKind

    a = _card(fw, "a@example.org", 2000)
    b = _card(fw, "b@example.org", 1000)
    x = fw.issue(402)
    funds.allot(fw.fund.id, x, 2500, reason="X", maintainer=fw.maintainer)
    fw.deliver("charge.refunded", _refund_at_stripe(fw, _intent(fw, a), 2000))
    assert (fund_balance(fw.fund), escrow(x.id)) == (167, 2500)
    assert funds.subscription_parts(fw.fund) == {b.id: 167}
    assert ledger.balance(ledger.account(AccountKind.commons_funds), "USD") == -1667
    assert ledger.balance(ledger.account(AccountKind.subscriber_refunds, fund_id=fw.fund.id), "USD") == 2000
    assert session.scalar(select(AuditEvent.details).where(AuditEvent.action == "fund.taken_back_uncovered")) \
        == {"receipt": session.scalar(select(funds.FundReceipt.id).where(funds.FundReceipt.subscription_id == a.id)),
            "key": session.scalar(select(AuditEvent.details).where(AuditEvent.action == "fund.taken_back"))["key"],
            "covered_minor": 1667}
    fw.bill(b)
    assert fund_balance(fw.fund) == 1167
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


# --- malformed and hostile invoices ----------------------------------------------------

@pytest.mark.parametrize("change, status", [
    ({"amount_paid": -500}, DeliveryStatus.malformed),
    ({"amount_paid": "2000"}, DeliveryStatus.malformed),
    ({"amount_paid": 2**63}, DeliveryStatus.malformed),
    ({"amount_paid": 10**15 + 1}, DeliveryStatus.malformed),
    ({"currency": "eur"}, DeliveryStatus.failed),
    ({"currency": "xxx"}, DeliveryStatus.failed),
    ({"currency": None}, DeliveryStatus.failed),
    ({"amount_paid": 0}, DeliveryStatus.processed),
], ids=["negative", "string", "beyond-int64", "beyond-max-minor", "other-currency", "unknown-currency", "no-currency", "zero"])
def test_a_malformed_or_foreign_invoice_paid_moves_nothing(fw, session, change, status):
    sub = fw.subscribe(fw.user("odd-invoice@example.org"), 2000)
    checkout, created, paid = fw.first_events(sub)
    fw.deliver(*checkout)
    fw.deliver(*created)
    delivery = fw.deliver("invoice.paid", {**paid[1], **change})
    assert delivery.status is status, delivery.outcome
    assert fund_balance(fw.fund) == 0
    assert session.scalar(select(funds.FundReceipt.id).where(funds.FundReceipt.subscription_id == sub.id)) is None


def test_an_invoice_paid_naming_no_subscription_at_all_is_ignored_not_kept(fw, session):
    invoice = {"id": "in_foreign_1", "object": "invoice", "amount_paid": 1000, "currency": "usd",
               "customer": "cus_x", "metadata": {}}
    assert fw.deliver("invoice.paid", invoice).status is DeliveryStatus.ignored
    assert fund_balance(fw.fund) == 0


# --- hostile people ----------------------------------------------------------------------

def _signed_in(client, person):
    with client.session_transaction() as browser:
        browser["_user_id"] = person.get_id()
        browser["_fresh"] = True


def test_a_maintainers_formula_reason_cannot_run_in_a_subscribers_statement_csv(fw, session):
    from marketplace.reports.fund_statements import statement_csv, subscriber_statement

    (sub,) = _bank(fw, [1000])
    item = fw.issue(404)
    funds.allot(fw.fund.id, item, 500, reason='=HYPERLINK("http://evil.example","click")', maintainer=fw.maintainer)
    text = statement_csv(subscriber_statement(sub.subscriber_id))
    row = next(line for line in text.splitlines() if ",allotted," in line)
    assert ",\"'=HYPERLINK(" in row and ",\"=HYPERLINK(" not in row


@pytest.mark.parametrize("amount", ["1e2", "-5", "0.001", "0", "NaN", "99999999999999999999", "<b>5</b>"])
def test_hostile_amounts_in_the_allot_form_allot_nothing(fw, client, session, app, amount):
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        _bank(fw, [3000])
        item = fw.issue(405)
        session.commit()
        _signed_in(client, fw.maintainer)
        answer = client.post(f"/projects/{fw.project.slug}/fund/usd/allot",
                             data={"usd-item": item.id, "usd-amount": amount, "usd-reason": "ok", "usd-token": "t1"})
        assert answer.status_code == 303
        assert session.scalar(select(funds.Allotment.id)) is None
        assert fund_balance(fw.fund) == 3000
    finally:
        app.config["WTF_CSRF_ENABLED"] = True


def test_a_long_or_html_reason_is_refused_or_shown_as_text(fw, client, session, app):
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        _bank(fw, [3000])
        item = fw.issue(406)
        session.commit()
        _signed_in(client, fw.maintainer)
        url = f"/projects/{fw.project.slug}/fund/usd/allot"
        client.post(url, data={"usd-item": item.id, "usd-amount": "5", "usd-reason": "x" * 5000, "usd-token": "t2"})
        assert session.scalar(select(funds.Allotment.id)) is None
        answer = client.post(url, data={"usd-item": item.id, "usd-amount": "5",
                                        "usd-reason": "<script>alert(1)</script>", "usd-token": "t3"})
        allotment = session.scalar(select(funds.Allotment))
        assert answer.status_code == 303 and allotment.amount_minor == 500
        page = client.get(f"/funds/allotments/{allotment.id}").get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
        fund_page = client.get(f"/projects/{fw.project.slug}/fund").get_data(as_text=True)
        assert "<script>alert(1)</script>" not in fund_page
    finally:
        app.config["WTF_CSRF_ENABLED"] = True


@pytest.mark.parametrize("action", ["pause", "resume", "cancel", "checkout", "transfer"])
def test_another_person_cannot_act_on_a_subscription(fw, client, session, app, action):
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        (sub,) = _bank(fw, [1000])
        stranger = fw.user("stranger@example.org")
        session.commit()
        _signed_in(client, stranger)
        answer = client.post(f"/funds/subscriptions/{sub.id}/{action}",
                             data={"s%d-amount" % sub.id: "10", "s%d-reference" % sub.id: "X",
                                   "s%d-received_on" % sub.id: str(utcnow().date())})
        assert answer.status_code in (403, 404) or "/login" in answer.headers.get("Location", "")
        assert client.get(f"/funds/subscriptions/{sub.id}").status_code in (403, 404)
        session.refresh(sub)
        assert sub.state is SubscriptionState.active and fund_balance(fw.fund) == 1000
    finally:
        app.config["WTF_CSRF_ENABLED"] = True


def test_attribution_with_many_subscribers_and_odd_amounts_adds_up_exactly(fw, session):
    amounts = [1, 2, 3, 7, 11, 13, 97, 101, 333, 999, 1001, 4999] * 3
    subs = _bank(fw, amounts, prefix="many")
    paid = {sub.id: amount for sub, amount in zip(subs, amounts)}
    total = sum(amounts)
    taken: dict[int, int] = {}
    for n, amount in enumerate([1, 7, 333, 1234, total // 3 + 1]):
        allotment = funds.allot(fw.fund.id, fw.issue(410 + n), amount, reason=f"odd {n}", maintainer=fw.maintainer)
        shares = {a.subscription_id: a.amount_minor for a in session.scalars(
            select(AllotmentAttribution).where(AllotmentAttribution.allotment_id == allotment.id))}
        assert sum(shares.values()) == amount and all(v > 0 for v in shares.values())
        for sub_id, share in shares.items():
            taken[sub_id] = taken.get(sub_id, 0) + share
        assert all(taken.get(sub_id, 0) <= paid[sub_id] for sub_id in paid)
    rest = fund_balance(fw.fund)
    last = funds.allot(fw.fund.id, fw.issue(420), rest, reason="all the rest", maintainer=fw.maintainer)
    assert sum(a.amount_minor for a in last.attributions) == rest
    for a in last.attributions:
        taken[a.subscription_id] = taken.get(a.subscription_id, 0) + a.amount_minor
    assert taken == paid  # every subscriber's money attributed exactly once
    assert session.scalar(select(Allotment.id).where(Allotment.amount_minor <= 0)) is None


@pytest.mark.parametrize("item", ["99999999999999", "-1", "abc", ""])
def test_a_hostile_item_number_in_the_allot_form_allots_nothing(fw, client, session, app, item):
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        _bank(fw, [3000])
        session.commit()
        _signed_in(client, fw.maintainer)
        answer = client.post(f"/projects/{fw.project.slug}/fund/usd/allot",
                             data={"usd-item": item, "usd-amount": "5", "usd-reason": "ok", "usd-token": "t9"})
        assert answer.status_code == 303
        assert session.scalar(select(Allotment.id)) is None and fund_balance(fw.fund) == 3000
    finally:
        app.config["WTF_CSRF_ENABLED"] = True
