"""The stored public reports, the jobs that refresh them and write the export,
the median days to merge, and the charts' geometry."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from marketplace.backlog.models import PullRequest
from marketplace.reports import charts, public
from marketplace.reports.models import ReportSnapshot


def test_a_stored_report_is_served_until_it_is_older_than_max_age(year):
    first = public.commons_report(max_age=600)
    stored = year.world.session.get(ReportSnapshot, "commons")
    assert stored is not None and stored.data["currencies"] == first["currencies"]
    year.dated(datetime(2026, 7, 1), lambda: year.org_pledge(903, 500))
    usd = lambda report: next(c for c in report["currencies"] if c["currency"] == "USD")  # noqa: E731
    assert usd(public.commons_report(max_age=600))["received"] == usd(first)["received"]  # stored figures
    assert usd(public.commons_report(max_age=0))["received"] == usd(first)["received"] + 500  # recomputed
    assert usd(public.commons_report(max_age=600))["received"] == usd(first)["received"] + 500  # and stored


def test_refresh_job_stores_every_report_and_the_export_job_writes_todays_archive(app, year, tmp_path):
    from jobs.reports import export_public_data, refresh_reports
    from marketplace.timeutil import utcnow

    count = refresh_reports()
    keys = set(year.world.session.scalars(select(ReportSnapshot.key)))
    assert "commons" in keys and f"project:{year.world.project.id}" in keys and len(keys) == count
    app.config["REPORTS_EXPORT_DIR"] = str(tmp_path)
    try:
        name = export_public_data()
    finally:
        app.config.pop("REPORTS_EXPORT_DIR")
    assert name == f"backlog-commons-{utcnow().date().isoformat()}.zip" and (tmp_path / name).is_file()


def test_median_days_from_first_funding_to_merge_leaves_out_work_merged_before_funding(year):
    session = year.world.session
    pulls = {p.number: p for p in session.scalars(select(PullRequest).where(PullRequest.number.in_((1901, 1904))))}
    # 901 first funded 2026-01-10, 904 on 2026-01-20 (held_at is the real time; set it to the dated day).
    year.a.held_at, year.d_org.held_at, year.d_other.held_at = (datetime(2026, 1, 10), datetime(2026, 1, 20),
                                                                datetime(2026, 1, 21))
    pulls[1901].merged_at = datetime(2026, 4, 10)  # 90 days
    pulls[1904].merged_at = datetime(2026, 5, 10)  # 110 days
    session.flush()
    assert public.compute_commons_report()["median_days_to_merge"] == 100.0
    pulls[1904].merged_at = datetime(2025, 12, 1)  # merged before any pledge: not counted
    session.flush()
    assert public.compute_project_report(year.world.project)["median_days_to_merge"] == 90.0


def test_bar_chart_scales_to_the_largest_value_and_draws_negative_values_as_nothing():
    chart = charts.bar_chart("c", "Title", "Description", "USD", ["In", "Out"],
                             [("2026-01", [20000, 0]), ("2026-02", [10000, -500])])
    widths = [[bar.width for bar in row.bars] for row in chart.rows]
    full = charts.WIDTH - charts.LABEL_WIDTH - 10
    assert widths == [[full, 0.0], [full / 2, 0.0]]
    assert [bar.value for bar in chart.rows[1].bars] == [10000, -500]  # the table shows the real values
    assert charts.bar_chart("c", "T", "D", "USD", ["In"], []) is None
    assert charts.bar_chart("c", "T", "D", "USD", ["In"], [("x", [0])]).rows[0].bars[0].width == 0.0


def test_reporting_conversion_states_its_rates_and_never_adds_without_one():
    from datetime import date
    from decimal import Decimal

    import pytest

    from marketplace.reports.service import ReportError, convert, parse_rates

    rates = parse_rates("EUR=1.0832@2026-11-30, jpy=0.0067@2026-11-29")
    assert (rates["EUR"].rate, rates["EUR"].on, rates["JPY"].rate) == (Decimal("1.0832"), date(2026, 11, 30),
                                                                       Decimal("0.0067"))
    # 10.00 USD + 20.00 EUR × 1.0832 + 1000 JPY × 0.0067 = 10 + 21.664 + 6.7 = 38.364 → 38.36
    both = convert({"USD": 1000, "EUR": 2000, "JPY": 1000}, "USD", rates)
    assert (both.total_minor, [r.currency for r in both.used], both.missing) == (3836, ["EUR", "JPY"], [])
    assert convert({"USD": 1000, "KES": 5000}, "USD", rates).total_minor is None
    assert convert({"USD": 1000, "KES": 5000}, "USD", rates).missing == ["KES"]
    assert convert({"EUR": 5}, "USD", parse_rates("EUR=1.1@2026-11-30")).total_minor == 6  # 5.5 cents: half to even
    with pytest.raises(ReportError):
        parse_rates("EUR=abc")


def test_commons_report_page_shows_the_conversion_only_with_rates_configured(app, client, year):
    app.config.update(REPORTS_MAX_AGE_SECONDS=0, REPORTING_RATES="EUR=1.0832@2026-11-30")
    try:
        converted = client.get("/reports").get_data(as_text=True)
        app.config["REPORTING_RATES"] = ""
        plain = client.get("/reports").get_data(as_text=True)
    finally:
        app.config.pop("REPORTS_MAX_AGE_SECONDS")
        app.config["REPORTING_RATES"] = ""
    # received: 280.00 USD + 20.00 EUR × 1.0832 = 301.664 → $301.66
    assert "$301.66" in converted and "1 EUR = 1.0832 USD" in converted
    assert "Converted for reporting only" not in plain


def test_cli_refreshes_the_reports_and_writes_the_export(runner, year, tmp_path):
    refreshed = runner.invoke(args=["reports", "refresh"])
    assert refreshed.exit_code == 0 and "2 reports recomputed (the commons and 1 projects)" in refreshed.output
    exported = runner.invoke(args=["reports", "export", "--directory", str(tmp_path)])
    assert exported.exit_code == 0, exported.output
    assert len(list(tmp_path.glob("backlog-commons-*.zip"))) == 1


def test_sdg_rows_and_the_project_report_match_the_ledger(year):
    from marketplace.ledger.models import AccountKind
    from tests.reports.test_statements import ledger_sum

    project = year.world.project
    received = ledger_sum(AccountKind.item_escrow, txn_kind="pledge_received")
    released = -ledger_sum(AccountKind.item_escrow, txn_kind="payout_released")
    commons = public.compute_commons_report()
    sdgs = sorted(s.sdg for s in project.sdgs)
    assert sdgs and [(r["sdg"], r["received"], r["paid_out"]) for r in commons["by_sdg"] if r["currency"] == "USD"] \
        == [(sdg, received, released) for sdg in sdgs]
    report = public.compute_project_report(project)
    usd = next(c for c in report["currencies"] if c["currency"] == "USD")
    assert (usd["received"], usd["paid_out"], usd["held"], usd["fees"], usd["refunded"]) == (
        received, released, ledger_sum(AccountKind.item_escrow), ledger_sum(AccountKind.platform_fees),
        ledger_sum(AccountKind.refunds))
    assert sum(m["received"] for m in report["by_month"] if m["currency"] == "USD") == received


def test_free_text_that_a_spreadsheet_would_run_is_defused_in_csv_cells():
    from marketplace.reports.service import cell

    assert [cell(t) for t in ("=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "Fix the form", None)] == [
        "'=HYPERLINK(\"x\")", "'+1", "'-2", "'@SUM(A1)", "'\tx", "Fix the form", ""]
