"""The fund's page, its API answer (as the OpenAPI document describes it),
and the funder's pledges page with cancel, pause and resume — all without JavaScript."""
import re

from marketplace.api.openapi import openapi_document
from marketplace.funds import service as funds
from marketplace.funds.models import SubscriptionRail, SubscriptionState
from marketplace.money import Money
from marketplace.timeutil import utcnow


def _signed_in(client, person):
    with client.session_transaction() as browser:
        browser["_user_id"] = person.get_id()
        browser["_fresh"] = True


def _csrf(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def _funded(fw):
    a, b = fw.user("page-a@example.org"), fw.user("page-b@example.org")
    subs = []
    for person, amount, shown in ((a, 2000, True), (b, 1000, False)):
        sub = funds.subscribe(fw.fund, person, amount, rail=SubscriptionRail.bank_transfer, show_name=shown)
        funds.record_transfer(sub.id, Money(amount, "USD"), reference=f"P-{sub.id}", received_on=utcnow().date(),
                              actor=fw.admin)
        subs.append(sub)
    item = fw.issue(185)
    allotment = funds.allot(fw.fund.id, item, 2500, reason="Offline sync first", maintainer=fw.maintainer)
    return subs, item, allotment


def test_the_fund_page_shows_balance_income_subscribers_as_chosen_and_allotments(fw, client, session):
    (a, b), item, allotment = _funded(fw)
    session.commit()
    page = client.get(f"/projects/{fw.project.slug}/fund").get_data(as_text=True)
    assert "$5.00" in page  # the balance
    assert "$30.00 a month from 2 subscribers" in page
    assert "page-a: $20.00 a month" in page and "anonymous: $10.00 a month" in page and "page-b" not in page
    assert "Offline sync first" in page and "$25.00" in page
    assert "<script" not in page
    detail = client.get(f"/funds/allotments/{allotment.id}").get_data(as_text=True)
    assert "page-a: $16.67" in detail and "anonymous: $8.33" in detail


def test_the_fund_api_answers_as_its_document_says(fw, client, session, app):
    import jsonschema

    _funded(fw)
    session.commit()
    answer = client.get(f"/api/v1/projects/{fw.project.slug}/fund").get_json()
    [usd] = answer["funds"]
    assert (usd["balance"], usd["received"], usd["allotted"], usd["returned"], usd["monthly"]) == (
        500, 3000, 2500, 0, 3000)
    assert [s["name"] for s in usd["subscribers"]] == ["page-a", None]
    assert [(p["name"], p["amount_minor"]) for p in usd["allotments"][0]["attribution"]] == [
        ("page-a", 1667), (None, 833)]
    with app.test_request_context():
        document = openapi_document("http://localhost/api/v1")
    assert "/projects/{slug}/fund" in document["paths"]
    schema = {**document["components"]["schemas"]["ProjectFundView"], "components": document["components"]}
    jsonschema.validate(answer, schema, cls=jsonschema.Draft202012Validator)
    assert client.get("/api/v1/projects/no-such-project/fund").status_code == 404


def test_the_funder_pauses_resumes_and_cancels_from_the_pledges_page(fw, client, session):
    person = fw.user("self-service@example.org")
    sub = funds.subscribe(fw.fund, person, 1200, rail=SubscriptionRail.bank_transfer)
    funds.record_transfer(sub.id, Money(1200, "USD"), reference="SELF-1", received_on=utcnow().date(), actor=fw.admin)
    session.commit()
    _signed_in(client, person)
    page = client.get("/account/pledges").get_data(as_text=True)
    assert "Monthly subscriptions to project funds" in page and "$12.00" in page
    assert f'action="/funds/subscriptions/{sub.id}/pause"' in page
    token = _csrf(client)
    for action, state in (("pause", SubscriptionState.paused), ("resume", SubscriptionState.active),
                          ("cancel", SubscriptionState.cancelled)):
        response = client.post(f"/funds/subscriptions/{sub.id}/{action}", data={"csrf_token": token, "back": "pledges"})
        assert response.status_code == 303 and response.headers["Location"].endswith("/account/pledges")
        session.refresh(sub)
        assert sub.state is state
    assert funds.fund_balance(fw.fund) == 1200  # what the fund received stays the fund's
