"""Pool pages, the item page's "matched by", the match shown before paying,
the fiscal host's forms and the API, without JavaScript."""
from datetime import timedelta

from marketplace.extensions import db
from marketplace.pools import service as pools
from marketplace.pools.models import PoolState
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf
from tests.pools.helpers import escrow, held, person


def _scenario_pool(pw):
    pool = pw.pool(50000, name="Health match", ratio_percent=100, cap_per_pledge_minor=10000,
                   cap_per_funder_minor=15000, sdgs=[3])
    x = pw.item(3)
    pw.pledge(person("a@example.org"), x, 8000)
    return pool, x


def test_the_pool_page_shows_budget_matched_remaining_and_the_match(pw, client):
    pool, x = _scenario_pool(pw)
    html = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "<h1>Health match</h1>" in html
    for label, amount in (("Budget", "$500.00"), ("Matched", "$80.00"), ("Remaining", "$420.00")):
        assert f"<dt>{label}</dt><dd>{amount}</dd>" in html
    assert x.title in html
    assert "Health match" in client.get("/pools").get_data(as_text=True)


def test_the_item_page_says_matched_by_the_pool_and_previews_a_pledge(pw, client):
    pool, x = _scenario_pool(pw)
    html = client.get(f"/items/{x.id}").get_data(as_text=True)
    assert "$80.00 matched by" in html and f'href="/pools/{pool.id}">Health match</a>' in html
    html = client.get(f"/items/{x.id}?match_amount=400&match_currency=USD").get_data(as_text=True)
    assert "This pledge would be matched $100.00 by" in html  # the per-pledge cap
    html = client.get(f"/items/{x.id}?match_amount=abc&match_currency=USD").get_data(as_text=True)
    assert 'class="field-error" id="match-error"' in html
    assert held(pool) == 42000  # a preview moves nothing


def test_the_fiscal_host_confirms_the_budget_and_records_the_return_on_the_pool_page(pw, app):
    now = utcnow()
    pool = pools.create_pool(pw.sponsor, name="Later", currency="USD", budget_minor=20000,
                             starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1))
    host = as_user(app, pw.admin)
    path = f"/pools/{pool.id}"
    assert host.get(path).status_code == 200
    assert as_user(app, person("someone@example.org")).get(path).status_code == 404  # not public before funded
    response = host.post(f"{path}/confirm", data={"amount": "200.00", "reference": "BANK-9",
                                                  "received_on": now.date().isoformat(), "csrf_token": csrf(host, path)})
    assert response.status_code == 303
    assert (pool.state, held(pool)) == (PoolState.funded, 20000)
    pools.end_due(now + timedelta(days=2))
    response = host.post(f"{path}/return", data={"reference": "BACK-9", "csrf_token": csrf(host, path)})
    assert response.status_code == 303
    assert (held(pool), pool.returned_minor) == (0, 20000)
    assert as_user(app, person("f@example.org")).post(f"{path}/return", data={}).status_code in (400, 403)


def test_a_sponsor_creates_a_pool_from_the_form(pw, app):
    sponsor = as_user(app, pw.sponsor)
    today = utcnow().date()
    response = sponsor.post("/pools/new", data={
        "name": "Schools 2027", "kind": "ratio", "currency": "USD", "budget": "1,000.00", "ratio_percent": "200",
        "cap_per_pledge": "50", "sdgs": "4", "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=30)).isoformat(), "csrf_token": csrf(sponsor, "/pools/new")})
    assert response.status_code == 303
    from marketplace.extensions import db
    from marketplace.pools.models import MatchingPool

    pool = db.session.query(MatchingPool).filter_by(name="Schools 2027").one()
    assert (pool.budget_minor, pool.ratio_percent, pool.cap_per_pledge_minor, pool.eligible_sdgs,
            pool.state) == (100000, 200, 5000, [4], PoolState.awaiting_budget)


def test_the_api_lists_pools_and_gives_one_with_its_matches(pw, client):
    pool, x = _scenario_pool(pw)
    listed = client.get("/api/v1/pools").get_json()
    [row] = [p for p in listed["pools"] if p["pool"] == pool.id]
    assert row["figures"] == {"budget": 50000, "received": 50000, "matched": 8000, "matched_back": 0,
                              "returned": 0, "remaining": 42000}
    detail = client.get(f"/api/v1/pools/{pool.id}").get_json()
    assert detail["matches"] == [{"item": x.id, "pledge": detail["matches"][0]["pledge"], "amount_minor": 8000,
                                  "returned_minor": 0, "state": "held"}]
    assert (detail["cap_per_funder_minor"], detail["sdgs"]) == (15000, [3])
    assert client.get("/api/v1/pools/999999").status_code == 404
    assert escrow(x) == 16000
    document = client.get("/api/v1/openapi.json").get_json()
    assert {"/pools", "/pools/{id}"} <= set(document["paths"])
    from tests.api.test_api import check as conforms

    conforms(document, "PoolList", listed)
    conforms(document, "PoolDetail", detail)


def test_a_bank_transfer_pledge_awaiting_its_money_says_how_much_it_would_be_matched(pw, app):
    from marketplace.money import Money
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Rail

    pool, x = _scenario_pool(pw)
    funder = person("b@example.org")
    pledge = pledges.create(x, funder.id, Money(5000, "USD"), rail=Rail.bank_transfer, actor="test")
    html = as_user(app, funder).get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "this pledge would be matched $50.00 by" in html
    pledges.confirm_transfer(pledge.id, Money(5000, "USD"), reference="B-1", received_on=utcnow().date(),
                             actor="admin")
    html = as_user(app, funder).get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "Matched $50.00 by" in html and held(pool) == 42000 - 5000


def test_the_public_ledger_counts_the_pools_money(pw, client):
    _scenario_pool(pw)
    db.session.commit()  # the public totals follow committed money events (the stored ledger summary)
    usd = client.get("/api/v1/ledger").get_json()["totals"]["USD"]
    assert (usd["pools_received"], usd["pools_held"], usd["pools_returned"]) == (50000, 42000, 0)
    html = client.get("/transparency").get_data(as_text=True)
    assert "$500.00 received from sponsors, $420.00 still in the pools" in html


def test_a_rounds_page_publishes_its_distribution_before_moving_money(pw, client):
    round_ = pw.round(100000, name="Round")
    b = pw.item(3)
    for n in range(4):
        pw.pledge(person(f"qf{n}@example.org"), b, 2500)
    html = client.get(f"/pools/{round_.id}").get_data(as_text=True)
    assert "Distribution if the round ended now" in html
    assert "<td>4</td>\n<td>$100.00</td><td>$300.00</td><td>$300.00</td>" in html
    assert "Back to the sponsor: $700.00." in html
    assert held(round_) == 100000
