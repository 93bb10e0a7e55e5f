"""DPG screening records: country names to ISO 3166-1 codes (unmatched ones
reported), the import, the project page, the backlog's deployment-country
filter, and the share of payouts to implementors where a project is deployed."""
from __future__ import annotations

import json

from sqlalchemy import select

from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind
from marketplace.reports import public
from marketplace.reports.countries import normalise, to_code
from marketplace.reports.models import ProjectCountry
from marketplace.reports.screening import import_screening, load_screening_file
from tests.conftest import SEED


def test_screening_spellings_become_iso_codes():
    assert [to_code(n) for n in ("Palestine State", "Congo (Congo-Brazzaville)", "Democratic Republic of the Congo",
                                 "Czechia (Czech Republic)", "VietNam", "Côte d'Ivoire",
                                 "Eswatini (fmr. 'Swaziland')", "Saint Vincent and The Grenadines",
                                 "United States of America", "Kenya")] == [
        "PS", "CG", "CD", "CZ", "VN", "CI", "SZ", "VC", "US", "KE"]
    assert normalise(["Kenya", "kenya", "Atlantis", "", "  "]) == (["KE"], ["Atlantis"])


def test_every_country_name_in_the_vendored_screening_file_is_normalised():
    records = load_screening_file(SEED / "dpg" / "screening.json")
    assert len(records) == 166
    names = {name for record in records.values() for key in ("deploymentCountries", "developmentCountries")
             for name in (record.get("locations") or {}).get(key) or []}
    codes, unmatched = normalise(sorted(names))
    assert unmatched == [] and len(codes) == 247


def test_import_replaces_a_projects_countries_and_reports_what_it_could_not_place(session):
    records = {"odk": {"locations": {"deploymentCountries": ["Kenya", "Palestine State", "Atlantis", ""],
                                     "developmentCountries": ["United States of America"]}},
               "no-such-project": {"locations": {"deploymentCountries": ["Kenya"]}}}
    summary = import_screening(records)
    again = import_screening(records)
    assert (summary.projects, summary.countries, summary.no_project, summary.unmatched, summary.blank) == (
        1, 3, ["no-such-project"], {"Atlantis": ["odk"]}, 1)
    assert again.countries == 3
    from marketplace.projects.models import MemberProject

    odk = session.scalar(select(MemberProject.id).where(MemberProject.slug == "odk"))
    rows = session.execute(select(ProjectCountry.kind, ProjectCountry.country)
                           .where(ProjectCountry.project_id == odk).order_by(ProjectCountry.kind,
                                                                              ProjectCountry.country)).all()
    assert [tuple(r) for r in rows] == [("deployment", "KE"), ("deployment", "PS"), ("development", "US")]
    assert "not normalised: 'Atlantis' (in odk)" in summary.lines()


def test_project_page_shows_countries_and_the_backlog_filters_by_deployment_country(client, session):
    import_screening({"odk": {"locations": {"deploymentCountries": ["Kenya"], "developmentCountries": ["Germany"]}}})
    html = client.get("/projects/odk").get_data(as_text=True)
    assert "Kenya" in html and "Germany" in html and "/?country=KE" in html
    kenya = client.get("/?country=KE&state=all")
    assert kenya.status_code == 200
    api = client.get("/api/v1/items?country=ke&state=all").get_json()
    assert api["total"] > 0 and {i["project"]["slug"] for i in api["items"]} == {"odk"}
    assert client.get("/api/v1/items?country=ZW&state=all").get_json()["total"] == 0
    bad = client.get("/?country=Kenya")
    assert bad.status_code == 400 and "two-letter" in bad.get_data(as_text=True)


def test_project_report_splits_payouts_between_deployment_countries_and_elsewhere(year):
    import_screening({"odk": {"locations": {"deploymentCountries": ["Kenya"]}}})
    report = public.compute_project_report(year.world.project)
    owed_ama = ledger.balance(ledger.account(AccountKind.contributor_payable, user_id=year.ama.id), "USD")
    owed_bo = ledger.balance(ledger.account(AccountKind.contributor_payable, user_id=year.bo.id), "USD")
    assert report["local_share"] == [{"currency": "USD", "local": owed_ama, "elsewhere": owed_bo, "unknown": 0}]
    assert (owed_ama, owed_bo) == (9000, 9000)
    assert report["deployment_countries"] == ["KE"]
    assert report["items_solved_with_funding"] == 2
    json.dumps(report)  # JSON-ready
