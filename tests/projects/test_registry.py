import json

import pytest
from sqlalchemy import func, select

from marketplace.audit.models import AuditEvent
from marketplace.forges.models import Repository
from marketplace.forges.service import find_repository
from marketplace.projects.models import MemberProject, ProjectLinkKind, RegistryStatus
from marketplace.projects.registry import RegistryError, import_registry, load_registry_file
from tests.conftest import SEED

REGISTRY = SEED / "dpg" / "registry.json"


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_default_import_holds_every_active_record(session):
    # The seed ran the default import: the 228 records under nominees/.
    assert count(session, MemberProject) == 228
    statuses = set(session.scalars(select(MemberProject.registry_status)))
    assert statuses == {RegistryStatus.active}
    odk = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
    assert odk.name == "ODK"
    assert odk.registry_stage == "DPG"


def test_reimport_changes_nothing(session):
    events = count(session, AuditEvent)
    repos = count(session, Repository)
    summary = import_registry(load_registry_file(REGISTRY))
    assert summary.count("unchanged") == 228
    assert summary.count("created") == summary.count("updated") == 0
    assert count(session, AuditEvent) == events
    assert count(session, Repository) == repos


def test_include_archived_adds_the_rest_and_active_record_wins_a_shared_slug(session):
    summary = import_registry(load_registry_file(REGISTRY), include_archived=True)
    assert summary.count("created") == 522
    assert summary.count("skipped") == 5
    assert count(session, MemberProject) == 750
    growstuff = session.scalar(select(MemberProject).where(MemberProject.slug == "growstuff"))
    assert growstuff.registry_path == "nominees/growstuff.json"
    skipped = {r.path for r in summary.records if r.outcome == "skipped"}
    assert "archive/growstuff.json" in skipped


def test_url_behind_a_label_is_read_and_reported(session):
    summary = import_registry(load_registry_file(REGISTRY), include_archived=True)
    yuudee = next(r for r in summary.records if r.path == "archive/yuudee.json")
    assert any("xiaoyudi-China/yuudee" in reason for reason in yuudee.reasons)
    repo = find_repository("github.com", "xiaoyudi-China", "yuudee")
    assert repo is not None and repo.project.slug == "yuudee"


def test_organisation_urls_are_kept_as_links_and_reported(session):
    project = session.scalar(select(MemberProject).where(MemberProject.slug == "open-drone-suite"))
    assert [(link.kind, link.url) for link in project.links] == [
        (ProjectLinkKind.forge_namespace, "https://github.com/team-asr")
    ]
    assert project.repositories == []
    summary = import_registry(load_registry_file(REGISTRY))
    record = next(r for r in summary.records if r.slug == "open-drone-suite")
    assert any("organisation or group" in reason for reason in record.reasons)


def test_gitlab_repositories_including_nested_groups(session):
    surveystack = session.scalar(select(MemberProject).where(MemberProject.slug == "surveystack"))
    assert [(r.forge.value, r.host, r.owner, r.name) for r in surveystack.repositories] == [
        ("gitlab", "gitlab.com", "our-sci/software", "surveystack")
    ]


def test_a_repository_listed_by_two_projects_stays_with_the_first(session):
    repo = find_repository("gitlab.com", "pcmt", "pcmt")
    assert repo.project.slug == "product-catalog-management-tool"
    summary = import_registry(load_registry_file(REGISTRY))
    record = next(r for r in summary.records if r.slug == "project-catalog-management-tool")
    assert any("already belongs to project 'product-catalog-management-tool'" in r for r in record.reasons)


def test_sdgs_in_the_list_shape_are_read(session):
    # archive/acceda.json writes SDGs as [16, "Peace, Justice and Strong Institutions"].
    import_registry(load_registry_file(REGISTRY), include_archived=True)
    acceda = session.scalar(select(MemberProject).where(MemberProject.slug == "acceda"))
    assert 16 in acceda.sdg_numbers


def _record(**fields):
    base = {
        "_id": "example-dpg",
        "_path": "nominees/example-dpg.json",
        "name": "Example DPG",
        "description": "x",
        "SDGs": [{"SDGNumber": 3, "evidenceText": "health", "evidenceURL": ""}],
        "repositories": [{"name": "main", "url": "https://github.com/example/dpg"}],
        "stage": "DPG",
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"name": ""}, "no name"),
        ({"repositories": [{"name": "main", "url": "https://github.com/a b/c"}]}, "malformed repository URL"),
        ({"repositories": [{"name": "main", "url": "see our website"}]}, "malformed repository URL"),
        ({"SDGs": [{"SDGNumber": 18}]}, "outside 1–17"),
    ],
)
def test_an_invalid_record_is_named_and_nothing_is_imported(session, bad, message):
    projects = count(session, MemberProject)
    records = [_record(_id="good-one", _path="nominees/good-one.json"), _record(**bad)]
    with pytest.raises(RegistryError) as excinfo:
        import_registry(records)
    assert len(excinfo.value.problems) == 1
    assert excinfo.value.problems[0].startswith("nominees/example-dpg.json: ")
    assert message in excinfo.value.problems[0]
    assert count(session, MemberProject) == projects


def test_skip_invalid_imports_the_valid_records(session):
    summary = import_registry(
        [_record(_id="good-one", _path="nominees/good-one.json"), _record(name=None)], skip_invalid=True
    )
    assert [(r.slug, r.outcome) for r in summary.records] == [
        ("good-one", "created"),
        ("example-dpg", "invalid"),
    ]
    assert session.scalar(select(MemberProject).where(MemberProject.slug == "example-dpg")) is None


def test_cli_rejects_a_file_that_is_not_json(runner, session, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    projects = count(session, MemberProject)
    result = runner.invoke(args=["registry", "import", str(path)])
    assert result.exit_code == 1
    assert "not valid JSON" in result.output
    assert str(path) in result.output
    assert count(session, MemberProject) == projects


def test_cli_rejects_a_record_that_is_not_an_object(runner, session, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps([_record(), "oops"]))
    result = runner.invoke(args=["registry", "import", str(path)])
    assert result.exit_code == 1
    assert "record #1 is not a JSON object" in result.output


def test_cli_prints_the_summary_on_one_line_and_every_note_with_v(runner, session):
    result = runner.invoke(args=["registry", "import", str(REGISTRY)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "registry: created 0, updated 0, unchanged 228, skipped 0, invalid 0; 34 more lines (-v shows them)"]
    verbose = runner.invoke(args=["registry", "import", "-v", str(REGISTRY)])
    assert verbose.output.splitlines()[0] == "created 0, updated 0, unchanged 228, skipped 0, invalid 0"
    assert "not selected: 527 archived or excluded records" in verbose.output
    assert len(verbose.output.splitlines()) == 35
    # screening.json beside registry.json: every country name of the 166 records is normalised.
    assert ("screening: 164 projects with 3148 countries; 2 records without a member project; "
            "0 country names not normalised; 20 empty names skipped") in verbose.output.splitlines()


def test_cli_if_changed_skips_an_input_read_before_and_imports_a_changed_one(runner, session, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps([_record()]))
    first = runner.invoke(args=["registry", "import", "--if-changed", str(path)])
    assert first.output.startswith("registry: created 1,"), first.output
    again = runner.invoke(args=["registry", "import", "--if-changed", str(path)])
    assert again.exit_code == 0 and "input unchanged since" in again.output
    assert "not imported again" in again.output
    path.write_text(json.dumps([_record(name="Example DPG renamed")]))
    changed = runner.invoke(args=["registry", "import", "--if-changed", str(path)])
    assert changed.output.startswith("registry: created 0, updated 1,"), changed.output
    # Without --if-changed the same input is imported (and found unchanged record by record).
    forced = runner.invoke(args=["registry", "import", str(path)])
    assert forced.output.startswith("registry: created 0, updated 0, unchanged 1,"), forced.output


def test_a_changed_record_is_updated_once(session):
    records = load_registry_file(REGISTRY)
    odk = next(r for r in records if r["_id"] == "odk")
    odk["description"] = "Changed description"
    summary = import_registry(records)
    assert [r.slug for r in summary.records if r.outcome == "updated"] == ["odk"]
    again = import_registry(records)
    assert again.count("updated") == 0


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"SDGs": 5}, "SDGs is not a list"),
        ({"repositories": 5}, "repositories is not a list"),
        ({"license": 5}, "license is not a list"),
        ({"organizations": 7}, "organizations is not a list"),
        ({"SDGs": [{"SDGNumber": 3.7}]}, "SDG number 3.7 is not a whole number"),
        ({"SDGs": [{"SDGNumber": True}]}, "SDG number True is not a whole number"),
        ({"name": "x" * 301}, "name is longer than 300 characters"),
        ({"name": "Bad\x00name"}, "name contains a NUL character"),
        ({"description": "a\x00b"}, "description contains a NUL character"),
        ({"repositories": [{"name": "main", "url": "https://github.com/" + "a" * 2000}]}, "at most 2000 characters"),
    ],
)
def test_records_of_the_wrong_shape_are_named_not_crashed_on(session, bad, message):
    with pytest.raises(RegistryError) as excinfo:
        import_registry([_record(**bad)])
    assert excinfo.value.problems[0].startswith("nominees/example-dpg.json: ")
    assert message in excinfo.value.problems[0]


def test_non_http_urls_never_reach_a_link(session, client):
    record = _record(
        website="javascript:alert('website')",
        organizations=[{"name": "Org", "website": "javascript:alert(1)", "org_type": "owner"}],
        license=[{"spdx": "MIT", "licenseURL": "data:text/html,x"}],
        SDGs=[{"SDGNumber": 3, "evidenceText": "e", "evidenceURL": "vbscript:x"}],
    )
    summary = import_registry([record])
    assert summary.records[0].outcome == "created"
    assert "website \"javascript:alert('website')\" is not an http(s) URL: ignored" in summary.records[0].reasons
    project = session.scalar(select(MemberProject).where(MemberProject.slug == "example-dpg"))
    assert project.website is None
    assert project.organisations == [{"name": "Org", "website": None, "org_type": "owner"}]
    assert project.licences == [{"spdx": "MIT", "url": None}]
    assert project.sdgs[0].evidence_url is None
    html = client.get("/projects/example-dpg").get_data(as_text=True)
    assert "javascript:" not in html and "data:" not in html
