"""``make demo``'s month (marketplace/standins/demo.py), played on a database of
its own: the figures it must leave in the ledger, the ledger check, and the
pages a newcomer then sees. On SQLite, and on PostgreSQL when the suite has one."""
from __future__ import annotations

import json
import os
import urllib.request

import pytest
import sqlalchemy as sa

from marketplace.standins import demo
from tests.conftest import DEFAULT_PG, _postgres_reachable, make_app

SECRET = "demo-test-secret-key"


def _postgres_url() -> str | None:
    from marketplace.config import normalise_database_url

    url = normalise_database_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG)
    if not url.startswith("postgresql") or not _postgres_reachable(url):
        return None
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def played(request, tmp_path_factory):
    """The month played once per backend: (database URL, outcome, printed lines, state dir)."""
    root = tmp_path_factory.mktemp(f"demo-{request.param}")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'demo.sqlite3'}"
    else:
        suite = _postgres_url()
        if suite is None:
            pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL or start a server at 127.0.0.1:5432")
        target = sa.make_url(suite)
        target = target.set(database=f"{target.database}_demo")
        admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
        url = target.render_as_string(hide_password=False)
    lines: list[str] = []
    outcome = demo.play(url, secret_key=SECRET, state_dir=root / "standins", public_url="http://127.0.0.1:5001",
                        say=lines.append)
    yield url, outcome, lines, root / "standins"
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def demo_app(played):
    """The app on the played database, as ``serve.py --demo`` serves it."""
    app = make_app(played[0], DEMO=True)
    yield app
    from marketplace.extensions import db

    with app.app_context():
        db.engine.dispose()


# What the month must leave, by hand (minor units; a 5% fee, the default rate):
# USD received 100 + 1,500 (cht-core#9534) + 400 (central#688) + 2,000 (opencrvs#12427)
#   + 120 + 75 (lightning#3583) + 60 (ushahidi#5048) = 4,255;
#   paid (1,600 + 400) × 0.95 = 1,900, fees 100, refunded 60 (the expiry), lost 120 (the chargeback),
#   held 2,000 + 75 = 2,075.
# Co-investment (USD): pledges 80 + 100 + 50 + 400 (the ratio pool's scenario) + 100 + 4 × 25 + 100 × 1
#   (the round) = 930 more received, 80 more refunded (taken back); escrow gains cht-core#10720
#   400 + match 100, cht-core#10109 100 + match 70, opencrvs#11703 50, the round's items 300 = 1,020.
#   Pools: 500 (card) + 1,000 (transfer) paid in = 170 matched + 330 returned + 1,000 held by the round.
# Project fund (issue 18, USD): 200 + 200 (the foundation's two invoices) + 50 (a transfer) = 450 paid in;
#   150 allotted to cht-core#10109's escrow, 300 held by the fund.
# EUR received 250 (cht-core#9534) + 150 (central#688) + 80 + 120 (kpi#810) = 600;
#   paid (250 + 150) × 0.95 = 380, fees 20, refunded 80 (taken back), held 120.
EXPECTED = {
    "USD": {"received": 518500, "held": 324500, "paid": 190000, "fees": 10000, "owed": 0, "refunded": 14000,
            "lost": 12000, "pools_in": 150000, "pools_held": 100000, "pools_returned": 33000,
            "funds_in": 45000, "funds_held": 30000},
    "EUR": {"received": 60000, "held": 12000, "paid": 38000, "fees": 2000, "owed": 0, "refunded": 8000,
            "lost": 0, "pools_in": 0, "pools_held": 0, "pools_returned": 0, "funds_in": 0, "funds_held": 0},
}
KINDS = {"funder_payments": "received", "item_escrow": "held", "payouts_paid": "paid", "platform_fees": "fees",
         "contributor_payable": "owed", "refunds": "refunded", "disputes": "lost", "sponsor_payments": "pools_in",
         "matching_pool": "pools_held", "sponsor_returns": "pools_returned", "subscriber_payments": "funds_in",
         "project_fund": "funds_held"}


def test_the_month_leaves_these_figures_per_currency_in_the_ledger_entries(played):
    engine = sa.create_engine(played[0])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT a.kind, e.currency, SUM(e.amount_minor) FROM ledger_entry e "
                "JOIN ledger_account a ON a.id = e.account_id GROUP BY a.kind, e.currency")).all()
            per_currency = conn.execute(sa.text(
                "SELECT e.currency, SUM(e.amount_minor) FROM ledger_entry e GROUP BY e.currency")).all()
    finally:
        engine.dispose()
    found: dict[str, dict[str, int]] = {}
    for kind, currency, total in rows:
        assert kind in KINDS, f"money in an account the month should not touch: {kind} {currency} {total}"
        found.setdefault(currency, {})[KINDS[kind]] = abs(int(total))
    for currency, figures in EXPECTED.items():
        assert {k: v for k, v in found[currency].items() if v} == {k: v for k, v in figures.items() if v}
    assert sorted(found) == ["EUR", "USD"]
    assert all(int(total) == 0 for _currency, total in per_currency)  # every currency balances
    assert played[1].figures == EXPECTED  # what the command prints is what the entries say


def test_the_ledger_check_passes_and_the_command_says_what_it_did(played, demo_app):
    from marketplace.ledger.check import check

    url, outcome, lines, _state = played
    assert outcome.violations == []
    with demo_app.app_context():
        assert check() == []
        summary = demo.summary_lines(outcome)
    assert summary == [
        "  EUR: received €600.00, held in escrow €120.00, paid out €380.00, fees €20.00, refunded €80.00",
        "  USD: received $5,185.00, held in escrow $3,245.00, paid out $1,900.00, fees $100.00, refunded $140.00, "
        "lost to a chargeback $120.00, paid into matching pools $1,500.00, held by pools $1,000.00, "
        "returned to sponsors $330.00, paid into project funds $450.00, held by project funds $300.00"]
    said = "\n".join(lines)
    assert "Otieno Ouma $912.00 (manual: paid), Achieng Njeri $608.00 (manual: paid) → paid" in said
    assert "Ana Souza $380.00 (stripe: paid) → paid" in said
    assert "his claim is submitted" in said


def test_funded_items_claims_and_payouts_show_on_the_served_pages_under_the_demo_banner(played, demo_app):
    outcome = played[1]
    client = demo_app.test_client()
    pages = {}
    for name, path in (("solved", f"/items/{outcome.items['pouchdb']}"),
                       ("funded", f"/items/{outcome.items['workqueue']}"),
                       ("payout", f"/payouts/{outcome.payouts['pouchdb-usd']}"),
                       ("stripe payout", f"/payouts/{outcome.payouts['entities-usd']}"),
                       ("transparency", "/transparency"), ("backlog", "/")):
        response = client.get(path)
        assert response.status_code == 200, path
        pages[name] = response.get_data(as_text=True)
        assert "Demo data." in pages[name], path
    assert "Grace Liu (Northwind Health Foundation): $1,500.00" in pages["solved"]
    assert "Lena Fischer: €250.00" in pages["solved"]
    assert "Otieno Ouma" in pages["solved"] and "completed" in pages["solved"]
    assert "$2,000.00" in pages["funded"] and "Rahul Verma" in pages["funded"]
    for figure in ("$912.00", "$608.00", "Achieng Njeri"):
        assert figure in pages["payout"]
    assert "paid" in pages["payout"] and "$380.00" in pages["stripe payout"]
    for figure in ("$5,185.00", "$3,245.00", "$1,900.00", "€600.00", "€380.00", "$120.00"):
        assert figure in pages["transparency"], figure
    assert "Bounty: $2,000.00" in pages["backlog"]
    # The month's reports: the commons report and a project's, small, no script, drawn as SVG.
    for path in ("/reports", "/projects/community-health-toolkit/report"):
        report = client.get(path)
        html = report.get_data(as_text=True)
        assert report.status_code == 200 and len(report.data) < 60 * 1024 and "<script" not in html, path
        assert "<svg role=\"img\"" in html, path
    report_html = client.get("/reports").get_data(as_text=True)
    assert "$5,185.00" in report_html  # received in USD, as on /transparency
    # Deployment countries, seeded from the DPG screening record.
    assert "Kenya" in client.get("/projects/community-health-toolkit").get_data(as_text=True)


def test_the_ratio_pool_and_the_round_show_the_issues_figures_on_their_pages(played, demo_app):
    outcome = played[1]
    client = demo_app.test_client()
    ratio = client.get(f"/pools/{outcome.pools['ratio']}").get_data(as_text=True)
    for label, amount in (("Budget", "$500.00"), ("Matched", "$170.00"), ("Come back from matches", "$80.00"),
                          ("Returned to the sponsor", "$330.00"), ("Remaining", "$0.00")):
        assert f"<dt>{label}</dt><dd>{amount}</dd>" in ratio, label
    assert "Demo data." in ratio and "ended" in ratio
    round_page = client.get(f"/pools/{outcome.pools['round']}").get_data(as_text=True)
    for figure in ("$300.00", "$9,900.00", "$29.41", "$970.59", "<td>100</td>"):
        assert figure in round_page, figure
    matched = client.get("/?matched=1").get_data(as_text=True)
    for key, listed in (("pool-x", True), ("pool-y", True), ("pool-z", False), ("round-c", False)):
        assert (f'/items/{outcome.items[key]}"' in matched) is listed, key


def test_the_project_fund_shows_its_two_subscribers_and_its_allotment(played, demo_app):
    client = demo_app.test_client()
    page = client.get("/projects/community-health-toolkit/fund").get_data(as_text=True)
    assert "<dt>Balance</dt><dd>$300.00</dd>" in page
    assert "$250.00 a month from 2 subscribers" in page
    assert "Offline forms for community health workers" in page and "$150.00" in page
    answer = client.get("/api/v1/projects/community-health-toolkit/fund").get_json()
    [usd] = answer["funds"]
    assert (usd["balance"], usd["received"], usd["allotted"]) == (30000, 45000, 15000)
    assert sorted(p["amount_minor"] for p in usd["allotments"][0]["attribution"]) == [3000, 12000]


def test_the_served_local_stripe_still_knows_the_connect_transfers(played, demo_app):
    """serve.py starts a new local Stripe on the saved state: the shares' transfers are there."""
    from sqlalchemy import select

    from marketplace.extensions import db
    from marketplace.payouts.models import PayoutShare
    from marketplace.standins.stripe import LocalStripe

    with demo_app.app_context():
        transfers = db.session.execute(select(PayoutShare.stripe_transfer_id, PayoutShare.amount_minor).where(
            PayoutShare.stripe_transfer_id.is_not(None)).order_by(PayoutShare.id)).all()
    assert sorted(amount for _id, amount in transfers) == [14250, 38000]
    stripe = LocalStripe(state_path=str(played[3] / "local-stripe.json"))
    try:
        for transfer_id, amount in transfers:
            with urllib.request.urlopen(f"{stripe.url}/v1/transfers/{transfer_id}", timeout=10) as answer:
                assert json.load(answer)["amount"] == amount
    finally:
        stripe.stop()


def test_the_demo_never_takes_make_runs_database():
    from marketplace.config import INSTANCE_DIR

    with pytest.raises(SystemExit, match="make run's database"):
        demo.main(["--database", str(INSTANCE_DIR / "backlog.sqlite3")])


def test_the_demo_turns_the_living_comment_on_for_one_repository_and_the_served_forge_shows_it(
        played, demo_app):
    """getodk/central's comments were written to the local forge during the month; serve.py's
    forge loads them, and the item page links to the comment on it."""
    from sqlalchemy import select

    from marketplace.extensions import db
    from marketplace.presence.models import ForgeWrite, ItemPresence, RepositoryPresence
    from marketplace.presence.service import marker
    from marketplace.standins.forge import LocalForge

    outcome = played[1]
    entities, round_a = outcome.items["entities"], outcome.items["round-a"]
    with demo_app.app_context():
        [enabled] = db.session.scalars(select(RepositoryPresence).where(RepositoryPresence.enabled)).all()
        assert (enabled.repository.full_name, enabled.changed_by_id) == ("getodk/central", outcome.people["tomas"])
        rows = {row.item_id: row for row in db.session.scalars(select(ItemPresence))}
        assert sorted(rows) == sorted([entities, round_a])  # only the repository turned on
        writes = list(db.session.scalars(select(ForgeWrite.action).where(ForgeWrite.item_id == entities)
                                         .order_by(ForgeWrite.id)))
        with demo_app.test_request_context():
            previous_key, demo_app.config["SECRET_KEY"] = demo_app.config["SECRET_KEY"], SECRET
            try:
                mark = marker(entities)  # keyed by the secret the month was played with
            finally:
                demo_app.config["SECRET_KEY"] = previous_key
        comment_id = rows[entities].comment_id
    # One comment, edited as the item went: € pledged, claimed, solved, the $ payout, the € payout
    # (the label goes when nothing is held any more, before the last edit that says so).
    assert writes == ["post_comment", "add_label", "edit_comment", "edit_comment", "edit_comment",
                      "edit_comment", "remove_label", "edit_comment"]
    forge = LocalForge(state_path=str(played[3] / "local-forge.json"))
    try:
        [living] = forge.comments["getodk/central#688"]
        assert living["id"] == comment_id and living["body"].startswith(mark)
        assert "Paid: " in living["body"] and "went to the implementors. Thank you!" in living["body"]
        assert forge.labels["getodk/central#688"] == []  # paid: nothing held, the label went
        assert forge.labels["getodk/central#1887"] == ["bounty"]  # the round's item: money held
        with urllib.request.urlopen(f"{forge.url}/getodk/central/issues/688", timeout=10) as answer:
            page = answer.read().decode()
        assert f"id='issuecomment-{comment_id}'" in page and "Thank you!" in page
    finally:
        forge.stop()
    previous = demo_app.config.get("STANDINS")
    demo_app.config["STANDINS"] = {"forge": "http://127.0.0.1:9"}  # make run's forge, wherever it listens
    try:
        item_page = demo_app.test_client().get(f"/items/{entities}").get_data(as_text=True)
    finally:
        demo_app.config["STANDINS"] = previous
    assert (f'<a href="http://127.0.0.1:9/getodk/central/issues/688#issuecomment-{comment_id}">'
            "The bounty's comment on the issue</a>") in item_page
