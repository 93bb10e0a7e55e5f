"""Report pages and downloads: who may see a statement, grants through the
forms, the audit pack, the public reports (size, no script, SVG charts with
title and description), their CSV and JSON, and the dated export archive."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date
from decimal import Decimal

from marketplace.reports import service as reports
from marketplace.reports.models import Grant
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"',
                     client.get(path).get_data(as_text=True)).group(1)


def test_organisation_statement_is_for_its_members_and_admins_only(app, year):
    world, path = year.world, f"/organisations/{year.org.slug}/statement?start=2026-01-01&end=2026-12-31"
    assert app.test_client().get(path).status_code == 302  # sign in first
    assert as_user(app, year.other).get(path).status_code == 403
    assert as_user(app, world.admin).get(path).status_code == 200
    page = as_user(app, world.funder).get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "https://github.com/Codertocat/Hello-World/pull/1901" in html and "$90.00" in html
    assert "<td>Kenya</td><td>yes</td>" in html and "India: $54.00" in html
    assert "The figures reconcile" in html and "<script" not in html
    org_page = f"/organisations/{year.org.slug}"
    assert f"{org_page}/statement" in as_user(app, world.funder).get(org_page).get_data(as_text=True)
    assert f"{org_page}/statement" not in as_user(app, year.other).get(org_page).get_data(as_text=True)
    assert "/statements/me" in as_user(app, year.other).get("/account").get_data(as_text=True)
    mine = as_user(app, year.other).get("/statements/me?start=2026-01-01&end=2026-12-31").get_data(as_text=True)
    assert "$40.00" in mine and "$100.00" not in mine  # their own 40, not the organisation's 100


def test_statement_csv_download_parses_and_its_figures_match_the_page(app, year):
    client = as_user(app, year.world.funder)
    response = client.get(f"/organisations/{year.org.slug}/statement?start=2026-03-01&end=2026-12-31&format=csv")
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert reports.verify_checksum(text)
    rows = list(csv.DictReader(io.StringIO("".join(line + "\n" for line in text.splitlines()[:-1]))))
    figures = {(r["currency"], r["section"]): Decimal(r["amount"]) for r in rows if r["section"].startswith("figure:")}
    assert figures[("USD", "figure:paid_out")] == Decimal("160.00")
    assert figures[("USD", "figure:held_at_close")] == Decimal("70.00")
    assert figures[("EUR", "figure:received")] == Decimal("20.00")


def test_a_period_that_ends_before_it_starts_answers_400_and_keeps_the_dates(app, year):
    page = as_user(app, year.world.funder).get(f"/organisations/{year.org.slug}/statement?start=2026-05-01&end=2026-01-01")
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "The period ends before it starts." in html and 'value="2026-05-01"' in html


def test_grant_created_and_pledges_tagged_through_the_forms_then_the_audit_pack(app, year):
    world = year.world
    client = as_user(app, world.funder)
    grants_path = f"/organisations/{year.org.slug}/grants"
    bad = client.post(grants_path, data={"csrf_token": _csrf(client, grants_path), "name": "Health",
                                         "reference": "G<1>", "starts_on": "2026-01-01", "ends_on": "2026-12-31",
                                         "currency": "USD"})
    assert bad.status_code == 400 and "G&lt;1&gt;" in bad.get_data(as_text=True)
    made = client.post(grants_path, data={"csrf_token": _csrf(client, grants_path), "name": "Health",
                                          "reference": "G-1", "starts_on": "2026-01-01", "ends_on": "2026-12-31",
                                          "currency": "usd"})
    assert made.status_code == 303
    grant = world.session.query(Grant).filter_by(reference="G-1").one()
    path = f"/grants/{grant.id}"
    assert client.post(path, data={"csrf_token": _csrf(client, path),
                                   "pledges": [year.a.id, year.b.id]}).status_code == 303
    assert reports.grant_statement(grant).pledge_ids == [year.a.id, year.b.id]
    assert as_user(app, year.other).get(path).status_code == 403

    printable = client.get(f"{path}/audit-pack")
    html = printable.get_data(as_text=True)
    assert printable.status_code == 200 and "reports.css" in html and "<script" not in html
    assert "$150.00" in html  # received: 100 + 50
    entries = client.get(f"{path}/audit-pack/entries.csv").get_data(as_text=True)
    statement = client.get(f"{path}/audit-pack/statement.csv").get_data(as_text=True)
    assert reports.verify_checksum(entries) and reports.verify_checksum(statement)
    css = client.get("/static/reports.css").get_data(as_text=True)
    assert "@media print" in css and "counter(page)" in css


def test_commons_report_page_is_small_has_no_script_and_accessible_svg_charts(app, client, year):
    app.config["REPORTS_MAX_AGE_SECONDS"] = 0
    try:
        page = client.get("/reports")
    finally:
        app.config.pop("REPORTS_MAX_AGE_SECONDS")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert len(page.data) < 60 * 1024
    assert "<script" not in html
    svgs = re.findall(r"<svg role=\"img\" aria-labelledby=\"([\w-]+)-title \1-desc\".*?</svg>", html, re.S)
    assert len(svgs) >= 4  # USD: months, SDGs, countries; EUR: months…
    assert '<title id="months-USD-title">' in html and '<desc id="months-USD-desc">' in html
    assert "<details><summary>" in html
    assert "/transparency" in html  # linked both ways
    assert "/reports" in client.get("/transparency").get_data(as_text=True)


def test_report_csv_and_json_agree_with_the_ledger(app, client, year):
    from marketplace.ledger.models import AccountKind
    from tests.reports.test_statements import ledger_sum

    app.config["REPORTS_MAX_AGE_SECONDS"] = 0
    try:
        data = client.get("/api/v1/reports/commons").get_json()
        text = client.get("/reports?format=csv").get_data(as_text=True)
    finally:
        app.config.pop("REPORTS_MAX_AGE_SECONDS")
    usd = next(c for c in data["currencies"] if c["currency"] == "USD")
    assert usd["received"] == ledger_sum(AccountKind.item_escrow, txn_kind="pledge_received") == 28000
    assert usd["fees"] == ledger_sum(AccountKind.platform_fees) == 2000
    assert usd["refunded"] == ledger_sum(AccountKind.refunds) == 1000
    assert usd["held"] == ledger_sum(AccountKind.item_escrow) == 7000
    assert usd["paid_out"] == 20000
    months = {(m["month"], m["currency"]): m for m in data["by_month"]}
    assert months[("2026-01", "USD")]["received"] == 20000 and months[("2026-04", "USD")]["paid_out"] == 10000
    assert {(c["country"], c["paid_to_recipients"]) for c in data["by_country"]} == {("KE", 9000), ("IN", 9000)}
    rows = list(csv.DictReader(io.StringIO(text)))
    totals = {(r["currency"], r["figure"]): Decimal(r["amount"]) for r in rows if r["section"] == "total"}
    assert totals[("USD", "received")] == Decimal("280.00") and totals[("EUR", "held")] == Decimal("20.00")
    month_received = sum(Decimal(r["amount"]) for r in rows
                         if r["section"] == "month" and r["figure"] == "received" and r["currency"] == "USD")
    assert month_received == totals[("USD", "received")]


def test_openapi_documents_the_report_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/reports/commons" in doc["paths"] and "/reports/projects/{slug}" in doc["paths"]
    assert {"CommonsReport", "ProjectReport"} <= set(doc["components"]["schemas"])
    assert client.get("/api/v1/reports/projects/no-such-project").status_code == 404


def test_public_export_archive_is_dated_and_holds_the_public_data(app, client, year, tmp_path):
    from marketplace.reports.exports import build_archive
    from marketplace.reports.screening import import_screening

    import_screening({"odk": {"locations": {"deploymentCountries": ["Kenya", "Uganda"],
                                            "developmentCountries": ["United States of America"]}}})
    app.config["REPORTS_EXPORT_DIR"] = str(tmp_path)
    try:
        path = build_archive(tmp_path, date(2026, 12, 1))
        listing = client.get("/exports").get_data(as_text=True)
        download = client.get("/exports/backlog-commons-2026-12-01.zip")
        missing = client.get("/exports/backlog-commons-2026-11-30.zip")
    finally:
        app.config.pop("REPORTS_EXPORT_DIR")
    assert path.name == "backlog-commons-2026-12-01.zip" and "backlog-commons-2026-12-01.zip" in listing
    assert download.status_code == 200 and missing.status_code == 404
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    assert {"README.txt", "projects.csv", "items.csv", "pledges.csv", "payouts.csv", "commons_report.json",
            "commons_report.csv"} <= set(archive.namelist())
    pledges = list(csv.DictReader(io.StringIO(archive.read("pledges.csv").decode())))
    ours = [p for p in pledges if int(p["id"]) in {year.a.id, year.e.id}]
    assert {(p["currency"], p["amount"], p["funder"]) for p in ours} == {("USD", "100.00", ""), ("EUR", "20.00", "")}
    projects = {p["slug"]: p for p in csv.DictReader(io.StringIO(archive.read("projects.csv").decode()))}
    assert (projects["odk"]["deployment_countries"], projects["odk"]["development_countries"]) == ("KE UG", "US")
    payouts = list(csv.DictReader(io.StringIO(archive.read("payouts.csv").decode())))
    assert sum(Decimal(p["gross"]) for p in payouts if p["currency"] == "USD") == Decimal("200.00")
    assert utcnow().year >= 2026


def test_statement_pages_list_the_latest_lines_and_point_to_the_csv_for_the_rest(app, year):
    from flask import render_template_string

    st = reports.organisation_statement(year.org, *reports.period_bounds(date(2026, 1, 1), date(2026, 12, 31)))
    assert len(st.currencies["USD"].money_lines) == 5  # four pledges received, one refund
    with app.test_request_context():
        limited = render_template_string('{% set line_limit = 2 %}{% include "reports/_statement.html" %}', st=st)
        whole = render_template_string('{% include "reports/_statement.html" %}', st=st)
    # USD's latest two: the last pledge received and the refund; EUR's one line.
    assert "The latest 2 of 5 lines are listed" in limited and limited.count("<td>received</td>") == 2
    assert limited.count("<td>refunded</td>") == 1
    assert "The latest" not in whole and whole.count("<td>received</td>") == 5  # 4 USD + 1 EUR


def test_charts_draw_the_last_24_months_and_the_15_countries_paid_most(app):
    from marketplace.reports.views import report_charts

    report = {"currencies": [{"currency": "USD"}],
              "by_month": [{"month": f"{2020 + i // 12}-{i % 12 + 1:02d}", "currency": "USD", "received": 100,
                            "matched": 0, "paid_out": 50} for i in range(40)],
              "by_sdg": [],
              "by_country": [{"country": code, "currency": "USD", "paid_to_recipients": 1000 - n}
                             for n, code in enumerate(["KE", "UG", "TZ", "RW", "NG", "GH", "IN", "BD", "NP", "PK",
                                                       "BR", "PE", "MX", "CO", "ZA", "ZM", "MW", "ET"])]}
    with app.test_request_context():
        months, sdgs, countries = report_charts(report)["USD"]
    assert len(months.rows) == 24 and months.rows[-1].label == "2023-04"
    assert sdgs is None
    assert len(countries.rows) == 16 and countries.rows[0].label == "Kenya"
    assert (countries.rows[-1].label, countries.rows[-1].bars[0].value) == ("3 other countries", 985 + 984 + 983)
