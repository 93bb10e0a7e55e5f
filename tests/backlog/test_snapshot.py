import json
import shutil

import pytest
from sqlalchemy import func, select

from marketplace.backlog.models import BacklogItem, ItemState, PullRequest, PullRequestState
from marketplace.backlog.service import upsert_issue
from marketplace.backlog.snapshot import SnapshotError, load_snapshot
from marketplace.forges import github
from marketplace.forges.models import Repository, RepositoryAlias
from marketplace.forges.service import find_repository
from marketplace.projects.models import MemberProject
from tests.conftest import SEED

SNAPSHOT = SEED / "dpg-issues"


def count(session, stmt) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery()))


def test_recorded_issues_and_pull_requests_are_stored_apart(session):
    # dpg-issues/README.md: 44 open and 184 closed issues; 62 merged, 11
    # closed-unmerged and 4 open pull requests.
    assert count(session, select(BacklogItem).where(BacklogItem.state == ItemState.open)) == 44
    assert count(session, select(BacklogItem).where(BacklogItem.state == ItemState.closed)) == 184
    by_state = dict(
        session.execute(select(PullRequest.state, func.count()).group_by(PullRequest.state)).all()
    )
    assert by_state == {
        PullRequestState.merged: 62,
        PullRequestState.closed: 11,
        PullRequestState.open: 4,
    }
    # No pull request number shows up as an item of the same repository.
    clash = select(BacklogItem.id).join(
        PullRequest,
        (PullRequest.repository_id == BacklogItem.repository_id)
        & (PullRequest.number == BacklogItem.number),
    )
    assert count(session, clash) == 0


def test_moved_repository_is_renamed_and_keeps_its_old_name(session):
    repo = find_repository("github.com", "SORMAS-Foundation", "SORMAS-Project")
    assert repo.full_name == "SORMAS-Foundation/SORMAS-Project"
    assert [a.full_name for a in repo.aliases] == ["hzi-braunschweig/SORMAS-Project"]
    assert find_repository("github.com", "hzi-braunschweig", "sormas-project").id == repo.id
    project = repo.project
    assert project.slug == "surveillance-outbreak-response-management-and-analysis-system"
    assert [r.full_name for r in project.repositories] == ["SORMAS-Foundation/SORMAS-Project"]
    assert count(session, select(BacklogItem).where(BacklogItem.repository_id == repo.id)) == 26


def test_repositories_missing_from_the_registry_join_their_project(session):
    odk = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
    assert sorted(r.full_name for r in odk.repositories if r.name in ("central", "collect")) == [
        "getodk/central",
        "getodk/collect",
    ]
    openfn = session.scalar(
        select(MemberProject).where(MemberProject.slug == "openfn-integration-toolkit")
    )
    assert "OpenFn/lightning" in [r.full_name for r in openfn.repositories]


def test_trailing_slash_url_does_not_duplicate_the_repository(session):
    ushahidi = session.scalar(select(MemberProject).where(MemberProject.slug == "ushahidi"))
    assert [r.full_name for r in ushahidi.repositories].count("ushahidi/platform") == 1


def test_no_repository_path_is_held_twice(session):
    paths = session.execute(select(Repository.host, Repository.path_key)).all()
    aliases = session.execute(select(RepositoryAlias.host, RepositoryAlias.path_key)).all()
    assert len(set(paths)) == len(paths)
    assert not set(paths) & set(aliases)


def test_reloading_the_snapshot_changes_nothing(session):
    summaries = load_snapshot(SNAPSHOT)
    assert {s.file: s.items for s in summaries}["medic__cht-core.json"] == {"unchanged": 28}
    assert all(set(s.items) == {"unchanged"} for s in summaries)
    assert all(set(s.pull_requests) == {"unchanged"} for s in summaries)
    assert all(s.notes == [] for s in summaries)


def _copy_snapshot(tmp_path, files=("medic__cht-core.json",)):
    entries = [e for e in json.loads((SNAPSHOT / "index.json").read_text()) if e["file"] in files]
    for name in files:
        shutil.copy(SNAPSHOT / name, tmp_path / name)
    (tmp_path / "index.json").write_text(json.dumps(entries))
    return entries


def test_a_file_that_is_not_json_is_named_and_nothing_loads(session, tmp_path):
    entries = _copy_snapshot(tmp_path)
    (tmp_path / "broken.json").write_text("[{")
    entries.append({"file": "broken.json", "repository": "medic/cht-core", "project": "community-health-toolkit"})
    (tmp_path / "index.json").write_text(json.dumps(entries))
    with pytest.raises(SnapshotError) as excinfo:
        load_snapshot(tmp_path)
    assert excinfo.value.problems[0].startswith("broken.json: not valid JSON")


def test_a_non_issue_object_is_named_and_nothing_loads(session, tmp_path):
    _copy_snapshot(tmp_path)
    data = json.loads((tmp_path / "medic__cht-core.json").read_text())
    data[0]["title"] = "Changed by the broken load"
    data.insert(3, {"name": "cht-core", "full_name": "medic/cht-core"})  # a repository object
    (tmp_path / "medic__cht-core.json").write_text(json.dumps(data))
    with pytest.raises(SnapshotError) as excinfo:
        load_snapshot(tmp_path)
    assert excinfo.value.problems == [
        "medic__cht-core.json: element #3 is not a GitHub issue or pull request "
        "(neither repository_url nor html_url names a repository)"
    ]
    assert session.scalar(select(BacklogItem).where(BacklogItem.title == "Changed by the broken load")) is None


def test_an_unknown_project_is_refused(session, tmp_path):
    entries = _copy_snapshot(tmp_path)
    entries[0]["project"] = "no-such-project"
    (tmp_path / "index.json").write_text(json.dumps(entries))
    with pytest.raises(SnapshotError) as excinfo:
        load_snapshot(tmp_path)
    assert "member project 'no-such-project' does not exist" in excinfo.value.problems[0]


def test_elements_of_another_repository_are_refused(session, tmp_path):
    entries = _copy_snapshot(tmp_path)
    entries[0]["repository"] = "getodk/central"
    (tmp_path / "index.json").write_text(json.dumps(entries))
    with pytest.raises(SnapshotError) as excinfo:
        load_snapshot(tmp_path)
    assert "belong to medic/cht-core, not getodk/central" in excinfo.value.problems[0]


def test_cli_reports_a_bad_snapshot_and_exits_non_zero(runner, session, tmp_path):
    (tmp_path / "only.json").write_text('{"not": "a list"}')
    result = runner.invoke(args=["backlog", "load-snapshot", str(tmp_path)])
    assert result.exit_code == 1
    assert "only.json: expected a JSON list of GitHub issue objects" in result.output


def test_an_older_update_does_not_overwrite_a_newer_one(session):
    raw = json.loads((SNAPSHOT / "medic__cht-core.json").read_text())[0]
    repo = find_repository("github.com", "medic", "cht-core")
    newer = dict(raw, title="Newer title", updated_at="2026-06-01T00:00:00Z")
    older = dict(raw, title="Older title", updated_at="2026-05-20T00:00:00Z")
    assert upsert_issue(repo, github.parse_issue(newer)).outcome == "updated"
    result = upsert_issue(repo, github.parse_issue(older))
    assert result.outcome == "stale"
    assert result.row.title == "Newer title"


def test_label_changes_replace_the_labels(session):
    raw = json.loads((SNAPSHOT / "medic__cht-core.json").read_text())[0]
    repo = find_repository("github.com", "medic", "cht-core")
    changed = dict(raw, labels=[{"name": "Type: Feature"}, {"name": "Priority: 1 - High"}])
    item = upsert_issue(repo, github.parse_issue(changed)).row
    assert item.label_names == ["Priority: 1 - High", "Type: Feature"]


def _write_single(tmp_path, element: dict, entry: dict | None = None):
    (tmp_path / "one.json").write_text(json.dumps([element]))
    index = {"file": "one.json", "repository": "medic/cht-core", "project": "community-health-toolkit"}
    index.update(entry or {})
    (tmp_path / "index.json").write_text(json.dumps([index]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"html_url": "javascript:alert('html_url')"}, "field 'html_url' is not an http(s) URL"),
        ({"created_at": ""}, "field 'created_at' is missing"),
        ({"updated_at": "yesterday"}, "field 'updated_at' is not a timestamp: 'yesterday'"),
        ({"id": 2**70}, "field 'id' is missing or not a number from 1 to 9223372036854775807"),
        ({"id": True}, "field 'id' is missing or not a number from 1 to 9223372036854775807"),
        ({"number": -4}, "field 'number' is missing or not a number from 1 to 2147483647"),
        ({"title": "a\x00b"}, "field 'title' contains a NUL character"),
        ({"title": "t" * 1025}, "field 'title' is longer than 1024 characters"),
        ({"labels": [{"name": "l" * 256}]}, "a label is longer than 255 characters"),
        ({"labels": "bug"}, "field 'labels' is not a list"),
        ({"state": "merged"}, "state 'merged' is neither open nor closed"),
    ],
)
def test_bad_issue_fields_are_named_and_nothing_loads(session, tmp_path, change, message):
    raw = json.loads((SNAPSHOT / "medic__cht-core.json").read_text())[0]
    _write_single(tmp_path, dict(raw, **change))
    with pytest.raises(SnapshotError) as excinfo:
        load_snapshot(tmp_path)
    assert excinfo.value.problems == [
        f"one.json: element #0 is not a GitHub issue or pull request ({message})"
    ]


def test_labels_differing_only_by_spaces_are_one_label(session, tmp_path):
    raw = json.loads((SNAPSHOT / "medic__cht-core.json").read_text())[0]
    _write_single(tmp_path, dict(raw, labels=[{"name": "bug"}, {"name": "bug "}, "bug"]))
    load_snapshot(tmp_path)
    item = session.scalar(select(BacklogItem).where(BacklogItem.forge_id == raw["id"]))
    assert item.label_names == ["bug"]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"file": "../../../etc/hostname"}, "is not a .json file name in this directory"),
        ({"file": "sub/one.json"}, "is not a .json file name in this directory"),
        ({"repository": "bad name/x"}, "has no valid repository"),
        ({"repository": "medic/"}, "has no valid repository"),
        ({"repository": "../x"}, "has no valid repository"),
    ],
)
def test_index_entries_are_checked(session, tmp_path, entry, message):
    raw = json.loads((SNAPSHOT / "medic__cht-core.json").read_text())[0]
    _write_single(tmp_path, raw, entry)
    with pytest.raises(SnapshotError) as excinfo:
        load_snapshot(tmp_path)
    assert message in excinfo.value.problems[0]


def test_cli_prints_one_summary_line_and_skips_an_unchanged_directory(runner, session, tmp_path):
    shutil.copy(SNAPSHOT / "getodk__central.json", tmp_path / "getodk__central.json")
    (tmp_path / "index.json").write_text(json.dumps(
        [entry for entry in json.loads((SNAPSHOT / "index.json").read_text())
         if entry["file"] == "getodk__central.json"]))
    first = runner.invoke(args=["backlog", "load-snapshot", "--if-changed", str(tmp_path)])
    assert first.exit_code == 0, first.output
    # The seed was loaded already: the same 14 items and 1 pull request are found unchanged.
    assert first.output.splitlines() == ["snapshot: 1 repositories; items unchanged 14; pull requests unchanged 1"]
    again = runner.invoke(args=["backlog", "load-snapshot", "--if-changed", str(tmp_path)])
    assert "input unchanged since" in again.output and "not loaded" not in again.output
    verbose = runner.invoke(args=["backlog", "load-snapshot", "-v", str(tmp_path)])
    assert verbose.output.splitlines()[0].startswith("getodk__central.json → github.com/getodk/central: items")
