"""Allotments: refusals, returns to the fund (deleted item, expiry with no
claim at work), a double submission, and the statement's attribution."""
from datetime import timedelta

import pytest

from marketplace.claims.models import ClaimState
from marketplace.funds import service as funds
from marketplace.funds.models import AllotmentState, SubscriptionRail
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.reports.fund_statements import statement_csv, subscriber_statement
from marketplace.timeutil import utcnow
from tests.funds.helpers import escrow, fund_balance


def _bank_fund(fw, amounts):
    """Bank-transfer subscribers, each month's transfer recorded by the fiscal host."""
    subs = []
    for n, amount in enumerate(amounts):
        sub = funds.subscribe(fw.fund, fw.user(f"bank{n}@example.org"), amount, rail=SubscriptionRail.bank_transfer)
        assert funds.record_transfer(sub.id, Money(amount, "USD"), reference=f"T-{n}", received_on=utcnow().date(),
                                     actor=fw.admin)
        subs.append(sub)
    return subs


def test_a_maintainer_allotting_to_an_item_they_claimed_themselves_is_refused(fw):
    _bank_fund(fw, [3000])
    item = fw.issue(190)
    fw.maintainer.is_implementor = True
    from marketplace.claims import service as claims

    claim = claims.request_claim(item, fw.maintainer, plan="I will do it myself.", estimate_days=3,
                                 deadline=utcnow().date() + timedelta(days=10))
    assert claim.state is ClaimState.requested
    with pytest.raises(funds.FundError, match="You claimed this item yourself"):
        funds.allot(fw.fund.id, item, 1000, reason="mine", maintainer=fw.maintainer)
    assert (fund_balance(fw.fund), escrow(item.id)) == (3000, 0)
    # Another maintainer may.
    other = fw.user("other-maintainer@example.org")
    from marketplace.projects.models import ProjectMaintainer

    fw.session.add(ProjectMaintainer(project_id=fw.project.id, user_id=other.id, granted_by="test"))
    fw.session.flush()
    assert funds.allot(fw.fund.id, item, 1000, reason="theirs", maintainer=other).amount_minor == 1000


def test_allotting_more_than_the_fund_holds_or_as_a_stranger_is_refused(fw):
    _bank_fund(fw, [1000])
    item = fw.issue(191)
    with pytest.raises(funds.FundError, match="allot at most that"):
        funds.allot(fw.fund.id, item, 1001, reason="too much", maintainer=fw.maintainer)
    with pytest.raises(funds.FundError, match="Only a maintainer"):
        funds.allot(fw.fund.id, item, 100, reason="not mine", maintainer=fw.funder)
    assert fund_balance(fw.fund) == 1000


def test_a_double_submission_of_the_allot_form_allots_once(fw):
    _bank_fund(fw, [3000])
    item = fw.issue(192)
    first = funds.allot(fw.fund.id, item, 1000, reason="once", maintainer=fw.maintainer, request_key="tok-1")
    again = funds.allot(fw.fund.id, item, 1000, reason="once", maintainer=fw.maintainer, request_key="tok-1")
    assert first.id == again.id and (fund_balance(fw.fund), escrow(item.id)) == (2000, 1000)


def test_an_item_deleted_on_the_forge_gives_its_allotment_back_to_the_fund(fw, session):
    from marketplace.backlog.ending import end_item

    _bank_fund(fw, [2000, 1000])
    item = fw.issue(193)
    allotment = funds.allot(fw.fund.id, item, 2400, reason="delete me", maintainer=fw.maintainer)
    end_item(item, utcnow(), actor="test")
    session.refresh(allotment)
    assert (allotment.state, escrow(item.id), fund_balance(fw.fund)) == (AllotmentState.returned, 0, 3000)
    assert check() == []


def test_an_expired_allotment_waits_for_a_claim_at_work_and_returns_once_it_lapses(fw, session):
    _bank_fund(fw, [3000])
    item = fw.issue(194)
    allotment = funds.allot(fw.fund.id, item, 3000, reason="six months", maintainer=fw.maintainer)
    assert allotment.expires_at - allotment.created_at == timedelta(days=183)
    ama = fw.implementor("ama-exp@example.org", github_id=9191)
    claim = fw.claim(item, ama)
    later = utcnow() + timedelta(days=200)
    assert funds.return_expired(later) == []  # a claim is at work: it stays
    claim.state = ClaimState.lapsed
    session.flush()
    assert funds.return_expired(later) == [allotment.id]
    assert funds.return_expired(later) == []
    assert (fund_balance(fw.fund), escrow(item.id)) == (3000, 0)
    assert check() == []


def test_the_subscriber_statement_says_what_their_money_paid_for(fw, session, client):
    a, b = _bank_fund(fw, [2000, 1000])
    item = fw.issue(195)
    funds.allot(fw.fund.id, item, 2500, reason="Offline sync", maintainer=fw.maintainer)
    [st] = subscriber_statement(a.subscriber_id)
    assert (st.paid_minor, st.allotted_minor, st.in_fund_minor) == (2000, 1667, 333)
    assert [(line.item_id, line.share_minor, line.allotment_minor, line.state) for line in st.lines] == [
        (item.id, 1667, 2500, "held")]
    assert f"allotted,{utcnow().date()},allotment-{st.lines[0].allotment_id},{item.id},Offline sync,held,1667,2500" \
        in statement_csv([st])
    session.commit()
    with client.session_transaction() as browser:
        browser["_user_id"] = a.subscriber.get_id()
    page = client.get("/statements/me/funds").get_data(as_text=True)
    assert "Offline sync" in page and "$16.67" in page and "$25.00" in page


def test_a_leaving_project_returns_its_fund_pro_rata_and_the_fiscal_host_records_it(fw, session):
    a, b = _bank_fund(fw, [2000, 1000])
    item = fw.issue(196)
    funds.allot(fw.fund.id, item, 1500, reason="kept on the item", maintainer=fw.maintainer)
    made = funds.close_fund(fw.fund.id, actor=fw.admin)
    assert [(r.subscription_id, r.amount_minor) for r in made] == [(a.id, 1000), (b.id, 500)]
    session.refresh(a)
    assert a.state.value == "ended"
    for row in made:
        assert funds.record_return(row.id, reference=f"BACK-{row.id}", actor=fw.admin)
    assert fund_balance(fw.fund) == 0
    with pytest.raises(funds.FundError):
        funds.allot(fw.fund.id, item, 100, reason="closed", maintainer=fw.maintainer)
    assert check() == []


def test_a_leaving_projects_card_subscribers_are_refunded_on_their_invoices_payments(fw, session):
    from marketplace.funds import rails

    a, b = fw.user("card-a@example.org"), fw.user("card-b@example.org")
    sub_a, sub_b = fw.subscribe(a, 2000), fw.subscribe(b, 1000)
    fw.start(sub_a)
    fw.start(sub_b)
    fw.bill(sub_a)  # A's second month: 40.00 from A, 10.00 from B
    item = fw.issue(197)
    funds.allot(fw.fund.id, item, 2000, reason="stays on the item", maintainer=fw.maintainer)
    made = funds.close_fund(fw.fund.id, actor=fw.admin)
    assert [(r.subscription_id, r.amount_minor, r.rail.value) for r in made] == [
        (sub_a.id, 2400, "card"), (sub_b.id, 600, "card")]
    assert rails.end_at_stripe(fw.fund.id) == [sub_a.id, sub_b.id]
    assert {s["status"] for s in fw.stripe.subscriptions.values()} == {"canceled"}
    for row in made:
        assert rails.refund_return(row.id)
        assert not rails.refund_return(row.id)  # booked once
    # A's 24.00: 20.00 on the newest invoice's payment, 4.00 on the first one's.
    assert sorted(r["amount"] for r in fw.stripe.refunds.values()) == [400, 600, 2000]
    assert funds.fund_balance(fw.fund) == 0
    assert check() == []
