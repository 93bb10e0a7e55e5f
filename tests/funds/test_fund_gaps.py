"""Issue 18's gaps: the money Stripe took back shown on the fund page and in
the API, and a leaving project's card refund that fails afterwards — owed to
the subscriber, on the fiscal host's list to send by bank — in every order of
Stripe's events, each delivered twice. Every money test ends with the ledger
check (``flask ledger check`` runs again after each test, in the ``session`` fixture)."""
from __future__ import annotations

import copy
import itertools

import pytest
from sqlalchemy import func, select

from marketplace.api.openapi import openapi_document
from marketplace.audit.models import AuditEvent
from marketplace.funds import queries, rails
from marketplace.funds import service as funds
from marketplace.funds.models import FundReturn, FundReturnState, SubscriptionRail
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.funds.helpers import escrow, fund_balance, mails_to
from tests.funds.test_fund_breaks import _card, _intent, _refund_at_stripe


def _account(fw, kind: AccountKind) -> int:
    return ledger.balance(ledger.account(kind, fund_id=fw.fund.id), "USD")


# --- what Stripe took back, on the fund page and in the API ----------------------------

def _taken_back_world(fw):
    """A 20.00 and B 10.00 by card; 25.00 allotted to X; A's invoice refunded at
    Stripe (3.33 from the fund, 16.67 covered by the commons); B's chargeback
    lost (1.67 from the fund, 8.33 covered): 30.00 taken back."""
    a = _card(fw, "taken-a@example.org", 2000)
    b = _card(fw, "taken-b@example.org", 1000)
    x = fw.issue(501)
    funds.allot(fw.fund.id, x, 2500, reason="Offline sync", maintainer=fw.maintainer)
    fw.deliver("charge.refunded", _refund_at_stripe(fw, _intent(fw, a), 2000))
    fw.deliver("charge.dispute.closed", fw.stripe.dispute(_intent(fw, b), status="lost"))
    return x


def test_the_fund_page_shows_what_stripe_took_back_as_the_ledger_says(fw, client, session):
    x = _taken_back_world(fw)
    assert (fund_balance(fw.fund), escrow(x.id)) == (0, 2500)
    assert _account(fw, AccountKind.subscriber_refunds) == 3000
    assert queries.figures(fw.fund)["taken_back"] == 3000
    session.commit()
    page = client.get(f"/projects/{fw.project.slug}/fund").get_data(as_text=True)
    assert "Taken back" in page
    assert "$30.00 taken back by Stripe after it reached the fund (invoices refunded, chargebacks lost)" in page
    assert check() == []


def test_the_fund_api_gives_what_stripe_took_back_as_its_document_says(fw, client, session, app):
    import jsonschema

    _taken_back_world(fw)
    session.commit()
    answer = client.get(f"/api/v1/projects/{fw.project.slug}/fund").get_json()
    [usd] = answer["funds"]
    assert (usd["taken_back"], usd["balance"], usd["received"], usd["allotted"]) == (3000, 0, 3000, 2500)
    assert usd["taken_back"] == _account(fw, AccountKind.subscriber_refunds)
    with app.test_request_context():
        document = openapi_document("http://localhost/api/v1")
    fund_schema = document["components"]["schemas"]["FundCurrency"]
    assert "taken_back" in fund_schema["properties"] and "taken_back" in fund_schema["required"]
    schema = {**document["components"]["schemas"]["ProjectFundView"], "components": document["components"]}
    jsonschema.validate(answer, schema, cls=jsonschema.Draft202012Validator)
    assert check() == []


def test_a_fund_nothing_was_taken_back_from_shows_zero(fw, client, session):
    _card(fw, "whole@example.org", 1200)
    session.commit()
    [usd] = client.get(f"/api/v1/projects/{fw.project.slug}/fund").get_json()["funds"]
    assert (usd["taken_back"], usd["balance"]) == (0, 1200)
    assert check() == []


# --- a leaving project's card refund that fails ----------------------------------------

def _refunded_return(fw, email="leaving@example.org"):
    """A 20.00 a month by card, two months paid (40.00), the project leaves: the
    return of 40.00 is refunded at Stripe, 20.00 on each invoice's payment."""
    sub = _card(fw, email, 2000)
    fw.bill(sub)
    (row,) = funds.close_fund(fw.fund.id, actor=fw.admin)
    assert (row.amount_minor, row.rail) == (4000, SubscriptionRail.card)
    assert rails.refund_return(row.id)
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (0, 4000)
    refunds = sorted(fw.stripe.refunds.values(), key=lambda r: r["id"])
    assert [r["amount"] for r in refunds] == [2000, 2000]
    return sub, row, refunds


def _owed(session, row: FundReturn) -> list[tuple]:
    return [(r.subscription_id, r.rail, r.amount_minor, r.state, r.reference) for r in session.scalars(
        select(FundReturn).where(FundReturn.fund_id == row.fund_id, FundReturn.id != row.id).order_by(FundReturn.id))]


ORDERS = list(itertools.permutations(range(3)))


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(map(str, o)))
def test_a_failed_return_refund_is_owed_by_bank_in_every_order_of_its_events_twice(fw, session, order):
    """Events: the charge refunded (our refund still succeeded), refund.updated
    (failed), charge.refund.updated (failed); in every order, then all again
    in reverse under new event ids: 20.00 owed once, by bank."""
    sub, row, (first, _second) = _refunded_return(fw)
    before = copy.deepcopy(fw.stripe.charge_of(first["payment_intent"]))
    failed = fw.stripe.fail_refund(first["id"])
    assert failed["status"] == "failed"
    events = [("charge.refunded", before), ("refund.updated", failed), ("charge.refund.updated", failed)]
    for index in list(order) + list(reversed(order)):
        fw.deliver(*events[index])
    statuses = session.scalars(select(WebhookDelivery.status).where(WebhookDelivery.source == "stripe")
                               .where(WebhookDelivery.delivery_id.like("evt_fund_%"))).all()
    assert set(statuses) == {DeliveryStatus.processed}
    session.refresh(row)
    # The return paid 20.00 by card; the other 20.00 is back in the fund, owed to the subscriber by bank.
    assert (row.state, row.amount_minor) == (FundReturnState.returned, 2000)
    assert _owed(session, row) == [(sub.id, SubscriptionRail.bank_transfer, 2000, FundReturnState.due, first["id"])]
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (2000, 2000)
    assert [r.id for r in queries.due_returns()] == [r.id for r in session.scalars(
        select(FundReturn).where(FundReturn.state == FundReturnState.due))]
    assert len(queries.due_returns()) == 1
    assert session.scalar(select(AuditEvent.details).where(AuditEvent.action == "fund.return_refund_failed")) == {
        "refund_id": first["id"], "amount_minor": 2000, "reason": "expired_or_canceled_card",
        "owed_return": queries.due_returns()[0].id}
    told = [m for m in mails_to(session, "leaving@example.org") if m.subject == "Your refund could not be delivered"]
    assert len(told) == 1
    assert check() == []


def test_the_fiscal_host_sends_a_failed_refund_back_by_bank_from_the_host_page(fw, client, session):
    """The whole return failed at Stripe (both refunds): the return is failed,
    40.00 owed in two bank returns on /funds/host; the host records them and
    the fund ends empty, 40.00 returned."""
    from tests.funds.test_fund_pages_and_api import _signed_in

    sub, row, refunds = _refunded_return(fw, "closed-card@example.org")
    for refund in refunds:
        fw.deliver("refund.failed", fw.stripe.fail_refund(refund["id"]))
    session.refresh(row)
    assert (row.state, row.amount_minor) == (FundReturnState.failed, 2000)
    owed = queries.due_returns()
    assert [(r.amount_minor, r.rail, r.reference) for r in owed] == [
        (2000, SubscriptionRail.bank_transfer, refunds[0]["id"]),
        (2000, SubscriptionRail.bank_transfer, refunds[1]["id"])]
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (4000, 0)
    assert check() == []
    # A later close pass does not divide the owed money again.
    assert funds.close_fund(fw.fund.id, actor=fw.admin) == []
    session.commit()
    _signed_in(client, fw.admin)
    page = client.get("/funds/host").get_data(as_text=True)
    assert page.count("The card refund re_test_") == 2 and f"The card refund {refunds[0]['id']} failed" in page
    assert "Refund to the card" not in page  # the card failed: by bank only
    from tests.funds.test_fund_pages_and_api import _csrf

    token = _csrf(client)
    for r in owed:
        response = client.post(f"/funds/returns/{r.id}", data={
            "csrf_token": token, f"r{r.id}-csrf_token": token, f"r{r.id}-reference": f"BANK-{r.id}"})
        assert response.status_code == 303
    assert [r.state for r in session.scalars(select(FundReturn).where(FundReturn.id.in_([o.id for o in owed])))] \
        == [FundReturnState.returned] * 2
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (0, 4000)
    _signed_in(client, sub.subscriber)
    mine = client.get(f"/funds/subscriptions/{sub.id}").get_data(as_text=True)
    assert "the card refund failed: owed to you by bank transfer" in mine
    assert check() == []


def test_a_refund_failure_reported_before_the_return_is_booked_waits_then_applies(app, fw, session):
    """The webhook outran the commit that made the refunds: the failure waits
    for the return's booking, then is owed once."""
    from jobs.webhooks import retry_waiting_deliveries
    from marketplace.funds.models import FundReceipt

    sub = _card(fw, "early-fail@example.org", 2000)
    (row,) = funds.close_fund(fw.fund.id, actor=fw.admin)
    receipt = session.scalar(select(FundReceipt).where(FundReceipt.subscription_id == sub.id))
    # The refund refund_return makes (same key, same metadata), failed before our commit.
    refund = fw.stripe.create_refund({"payment_intent": receipt.payment_intent_id, "amount": "2000",
                                      "metadata[fund_return_id]": str(row.id)}, f"fund-return-{row.id}-{receipt.id}")
    waiting = fw.deliver("refund.failed", fw.stripe.fail_refund(refund["id"]))
    assert waiting.status is DeliveryStatus.waiting
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (2000, 0)
    assert rails.refund_return(row.id)
    assert retry_waiting_deliveries() == {"retried": 1, "failed": 0}
    session.refresh(waiting)
    assert waiting.status is DeliveryStatus.processed
    session.refresh(row)
    assert row.state is FundReturnState.failed
    assert [(r.amount_minor, r.reference) for r in queries.due_returns()] == [(2000, refund["id"])]
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (2000, 0)
    assert check() == []


def test_a_refund_failure_larger_than_its_return_is_failed_for_a_person(fw, session):
    sub, row, (first, _second) = _refunded_return(fw, "odd@example.org")
    failed = {**fw.stripe.fail_refund(first["id"]), "amount": 999999}
    delivery = fw.deliver("refund.updated", failed)
    assert delivery.status is DeliveryStatus.failed
    session.refresh(row)
    assert (row.state, row.amount_minor, queries.due_returns()) == (FundReturnState.returned, 4000, [])
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_returns)) == (0, 4000)
    assert check() == []


# --- subscribing for an organisation ----------------------------------------------------

def _organisation(fw, session, *, kind="funder"):
    """"Funders United" (``kind``), owned by org-owner, with org-member an accepted member."""
    from marketplace.organisations import service as organisations

    owner, member = fw.user("org-owner@example.org"), fw.user("org-member@example.org")
    org = organisations.create("Funders United", kind=kind, country="KE", owner=owner)
    assert organisations.invite(org, member.email, inviter=owner)
    organisations.accept(organisations.membership(org, member.id), user=member)
    session.flush()
    return org, owner, member


def _subscribe_form(client, fw, organisation_id: str, amount="15.00") -> str:
    from tests.funds.test_fund_pages_and_api import _csrf

    response = client.post(f"/projects/{fw.project.slug}/fund/subscribe", data={
        "csrf_token": _csrf(client), "amount": amount, "currency": "USD", "rail": "bank_transfer",
        "organisation_id": organisation_id, "show_name": "y"})
    assert response.status_code == 303
    return response.headers["Location"]


def test_a_member_subscribes_for_their_organisation_and_it_is_named_everywhere(fw, client, session, app):
    from marketplace.funds.models import FundSubscription
    from marketplace.reports.fund_statements import statement_csv, subscriber_statement
    from tests.funds.test_fund_pages_and_api import _signed_in

    org, owner, member = _organisation(fw, session)
    session.commit()
    _signed_in(client, member)
    form = client.get(f"/projects/{fw.project.slug}/fund").get_data(as_text=True)
    assert '<label for="organisation_id">Subscribe as</label>' in form
    assert f'<option value="{org.id}">Funders United</option>' in form and '<option selected value="">Myself' in form
    _subscribe_form(client, fw, str(org.id))
    sub = session.scalar(select(FundSubscription))
    assert (sub.subscriber_id, sub.organisation_id, sub.amount_minor, sub.show_name) == (member.id, org.id, 1500, True)
    assert session.scalar(select(AuditEvent.details).where(AuditEvent.action == "fund.subscribed"))["organisation"] \
        == org.id
    from marketplace.money import Money
    from marketplace.timeutil import utcnow

    assert funds.record_transfer(sub.id, Money(1500, "USD"), reference="ORG-1", received_on=utcnow().date(),
                                 actor=fw.admin)
    item = fw.issue(511)
    allotment = funds.allot(fw.fund.id, item, 1000, reason="Paid by the organisation", maintainer=fw.maintainer)
    session.commit()
    page = client.get(f"/projects/{fw.project.slug}/fund").get_data(as_text=True)
    assert "Funders United: $15.00 a month" in page and "org-member" not in page
    assert "Funders United: $10.00" in client.get(f"/funds/allotments/{allotment.id}").get_data(as_text=True)
    [usd] = client.get(f"/api/v1/projects/{fw.project.slug}/fund").get_json()["funds"]
    assert [s["name"] for s in usd["subscribers"]] == ["Funders United"]
    assert usd["allotments"][0]["attribution"] == [{"name": "Funders United", "amount_minor": 1000}]
    # The member's own statement names the organisation; so does its CSV.
    mine = client.get("/statements/me/funds").get_data(as_text=True)
    assert "for Funders United" in mine and "$15.00" in mine and "$10.00" in mine
    assert f"allotment-{allotment.id},{item.id},Paid by the organisation,held,1000,1000,Funders United" in \
        statement_csv(subscriber_statement(member.id))
    assert f"/funds/subscriptions/{sub.id}" in client.get("/account/pledges").get_data(as_text=True)
    assert "Subscribed for" in client.get(f"/funds/subscriptions/{sub.id}").get_data(as_text=True)
    # The organisation's fund statement: its owner sees what the member subscribed for it; a stranger does not.
    _signed_in(client, owner)
    theirs = client.get(f"/organisations/{org.slug}/fund-statement").get_data(as_text=True)
    assert "Fund statement of Funders United" in theirs and "Subscribed by org-member" in theirs
    assert "$15.00" in theirs and "Paid by the organisation" in theirs
    assert f"/organisations/{org.slug}/fund-statement?format=csv" in theirs
    csv_text = client.get(f"/organisations/{org.slug}/fund-statement?format=csv").get_data(as_text=True)
    assert f"{sub.id},{fw.project.name},USD,paid_in," in csv_text and csv_text.rstrip().endswith("Funders United")
    _signed_in(client, fw.user("stranger@example.org"))
    session.commit()
    assert client.get(f"/organisations/{org.slug}/fund-statement").status_code == 403
    assert check() == []


@pytest.mark.parametrize("who", ["stranger", "invited", "implementor_firm", "garbage", "no_such_org"])
def test_subscribing_for_an_organisation_one_may_not_act_for_is_refused_and_changes_nothing(
        fw, client, session, who):
    from marketplace.funds.models import FundSubscription
    from marketplace.organisations import service as organisations
    from tests.funds.test_fund_pages_and_api import _signed_in

    org, owner, _member = _organisation(fw, session, kind="implementor" if who == "implementor_firm" else "funder")
    person, value = fw.user("someone@example.org"), str(org.id)
    if who == "invited":  # invited, not accepted yet
        assert organisations.invite(org, person.email, inviter=owner)
    elif who == "implementor_firm":  # a member of an implementor firm, which funds nothing
        person = owner
    elif who == "garbage":
        value = "1 OR 1=1"
    elif who == "no_such_org":
        value = "2147483647"
    session.commit()
    audits = session.scalar(select(func.count(AuditEvent.id)))
    _signed_in(client, person)
    form = client.get(f"/projects/{fw.project.slug}/fund").get_data(as_text=True)
    assert "Funders United</option>" not in form
    back = _subscribe_form(client, fw, value)
    assert back.endswith(f"/projects/{fw.project.slug}/fund")
    page = client.get(back).get_data(as_text=True)
    assert "You can subscribe for an organisation only when you are one of its members." in page
    assert session.scalar(select(func.count(FundSubscription.id))) == 0
    assert session.scalar(select(func.count(AuditEvent.id))) == audits
    with pytest.raises(funds.FundError, match="only when you are one of its members"):
        funds.subscribe(fw.fund, person, 1500, rail=SubscriptionRail.bank_transfer, organisation_id=org.id)
    assert check() == []


def test_a_person_subscribes_both_for_themselves_and_for_their_organisation(fw, session):
    org, _owner, member = _organisation(fw, session)
    own = funds.subscribe(fw.fund, member, 1000, rail=SubscriptionRail.bank_transfer)
    for_org = funds.subscribe(fw.fund, member, 2500, rail=SubscriptionRail.bank_transfer, organisation_id=org.id)
    from marketplace.money import Money
    from marketplace.timeutil import utcnow

    for sub, amount in ((own, 1000), (for_org, 2500)):
        assert funds.record_transfer(sub.id, Money(amount, "USD"), reference=f"BOTH-{sub.id}",
                                     received_on=utcnow().date(), actor=fw.admin)
    with pytest.raises(funds.FundError, match="already subscribe"):
        funds.subscribe(fw.fund, member, 700, rail=SubscriptionRail.bank_transfer, organisation_id=org.id)
    assert [(s["name"], s["amount_minor"]) for s in queries.subscribers(fw.fund)] == [
        (None, 2500), (None, 1000)]  # neither chose to be shown
    assert fund_balance(fw.fund) == 3500
    assert check() == []


# --- a refund made at Stripe (not ours) that fails ----------------------------------------

@pytest.mark.parametrize("order", ["taken-then-failed", "failed-first"])
@pytest.mark.parametrize("failure", ["refund.failed", "charge.refund.updated", "charge.refunded"])
def test_a_refund_made_at_stripe_that_fails_gives_the_money_back_to_the_fund_in_both_orders_twice(
        fw, session, order, failure):
    """8.00 of A's 20.00 invoice refunded in Stripe's dashboard, then the refund
    fails (the card was closed): Stripe has the 8.00 again, so the fund does.
    ``charge.refunded`` carries the refund succeeded (taken back) and the
    failure comes by ``failure``; in both orders, each event delivered twice:
    nothing stays taken back."""
    from marketplace.funds.models import FundReceipt

    sub = _card(fw, "dash-fail@example.org", 2000)
    intent = _intent(fw, sub)
    charge = copy.deepcopy(_refund_at_stripe(fw, intent, 800))
    [refund] = [r for r in fw.stripe.refunds.values() if r["payment_intent"] == intent]
    if order == "taken-then-failed":  # delivered while Stripe still had the refund succeeded
        assert fw.deliver("charge.refunded", charge).status is DeliveryStatus.processed
        assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_refunds)) == (1200, 800)
    failed = fw.stripe.fail_refund(refund["id"])
    failure_event = (failure, fw.stripe.charge_of(intent) if failure == "charge.refunded" else failed)
    events = [("charge.refunded", charge), failure_event]
    if order == "failed-first":
        events.reverse()
    for event in events + events:
        assert fw.deliver(*event).status is DeliveryStatus.processed
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "fund.taken_back_failed")) \
        == (1 if order == "taken-then-failed" else 0)
    receipt = session.scalar(select(FundReceipt).where(FundReceipt.subscription_id == sub.id))
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_refunds), receipt.refunded_minor) == (
        2000, 0, 0)
    assert funds.subscription_parts(fw.fund) == {sub.id: 2000}
    assert check() == []


def test_a_refund_at_stripe_that_fails_after_the_fund_allotted_gives_the_commons_back_its_cover(fw, session):
    """A pays 20.00, 15.00 allotted; 20.00 refunded at Stripe (5.00 from the fund,
    15.00 covered by the commons), then the refund fails: the fund gets its
    5.00 back and the commons its 15.00, once."""
    sub = _card(fw, "cover-fail@example.org", 2000)
    funds.allot(fw.fund.id, fw.issue(521), 1500, reason="Before the refund", maintainer=fw.maintainer)
    intent = _intent(fw, sub)
    commons = ledger.balance(ledger.account(AccountKind.commons_funds), "USD")
    fw.deliver("charge.refunded", _refund_at_stripe(fw, intent, 2000))
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_refunds)) == (0, 2000)
    assert ledger.balance(ledger.account(AccountKind.commons_funds), "USD") == commons - 1500
    [refund] = [r for r in fw.stripe.refunds.values() if r["payment_intent"] == intent]
    failed = fw.stripe.fail_refund(refund["id"])
    for _ in range(2):
        assert fw.deliver("refund.failed", failed).status is DeliveryStatus.processed
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_refunds)) == (500, 0)
    assert ledger.balance(ledger.account(AccountKind.commons_funds), "USD") == commons
    assert check() == []


def test_a_failure_for_a_refund_nobody_made_on_our_charges_moves_nothing(fw, session):
    sub = _card(fw, "never@example.org", 2000)
    ghost = {"id": "re_never_made", "object": "refund", "amount": 2000, "currency": "usd", "status": "failed",
             "payment_intent": _intent(fw, sub), "failure_reason": "expired_or_canceled_card", "metadata": {}}
    for kind in ("refund.failed", "charge.refund.updated"):
        assert fw.deliver(kind, ghost).status is DeliveryStatus.processed
    assert (fund_balance(fw.fund), _account(fw, AccountKind.subscriber_refunds)) == (2000, 0)
    assert check() == []


def test_names_a_spreadsheet_would_run_are_quoted_in_every_row_of_the_fund_statement_csv(fw, session):
    """A project named "+…" and an organisation named "=…": in the paid-in and the
    allotted rows both start with an apostrophe (CSV injection)."""
    import csv
    import io

    from marketplace.money import Money
    from marketplace.organisations import service as organisations
    from marketplace.reports.fund_statements import organisation_statement, statement_csv
    from marketplace.timeutil import utcnow

    fw.project.name = "+SUM(1,1)"
    owner = fw.user("formula-owner@example.org")
    org = organisations.create('=HYPERLINK("http://evil.example","x")', kind="funder", country="KE", owner=owner)
    sub = funds.subscribe(fw.fund, owner, 1500, rail=SubscriptionRail.bank_transfer, organisation_id=org.id)
    assert funds.record_transfer(sub.id, Money(1500, "USD"), reference="F-1", received_on=utcnow().date(),
                                 actor=fw.admin)
    funds.allot(fw.fund.id, fw.issue(531), 1000, reason="=1+1", maintainer=fw.maintainer)
    session.flush()
    rows = list(csv.DictReader(io.StringIO(statement_csv(organisation_statement(org.id)))))
    assert [(r["kind"], r["project"], r["reason"], r["for_organisation"]) for r in rows] == [
        ("paid_in", "'+SUM(1,1)", "", "'" + org.name),
        ("allotted", "'+SUM(1,1)", "'=1+1", "'" + org.name)]
    assert check() == []
