"""Numeric ids decide, names are hints (issue 11 §3).

A repository renamed from ``Octocoders/Hello-World`` (forge id 186853261) to
``Octocoders/Hello-World-legacy``, then a *new* ``Octocoders/Hello-World``
created (id 186853262; GitHub's recorded ``repository.created`` payload with
that id): the old path is the new repository's in every lookup — adding it
(the service an admin uses, and the registry import), webhook matching, and
closing-reference resolution. A former name still redirects while no live
repository holds it. The same for GitLab projects (path reuse).
"""
import copy
import json

import pytest
from sqlalchemy import select

from marketplace.backlog.models import BacklogItem, ItemLink, ItemLinkKind
from marketplace.backlog.service import find_item
from marketplace.forges.service import RepositoryConflict, add_repository, find_repository, move_repository
from marketplace.forges.urls import parse_repository_url
from marketplace.projects.models import MemberProject
from marketplace.projects.registry import import_registry
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import SEED, make_repository
from tests.webhooks.helpers import payload, post_github, post_gitlab

OLD_ID, NEW_ID = 186853261, 186853262


def project(session, slug: str) -> MemberProject:
    return session.scalar(select(MemberProject).where(MemberProject.slug == slug))


@pytest.fixture
def renamed(session, client):
    """Octocoders/Hello-World of project odk, renamed by the recorded repository.renamed delivery."""
    repo = make_repository("Octocoders", "Hello-World", forge_id=OLD_ID, default_branch="master")
    renamed = payload("github/webhooks/repository/renamed.json")
    renamed["repository"].update(name="Hello-World-legacy", full_name="Octocoders/Hello-World-legacy")
    renamed["changes"]["repository"]["name"]["from"] = "Hello-World"
    assert post_github(client, "repository", renamed).status_code == 202
    assert (repo.full_name, [a.full_name for a in repo.aliases]) == (
        "Octocoders/Hello-World-legacy", ["Octocoders/Hello-World"])
    return repo


@pytest.fixture
def forge_with_new_repository(github_forge):
    """The forge: the renamed repository, and a new one holding the old name."""
    github_forge.repos[("Octocoders", "Hello-World-legacy")] = {
        "id": OLD_ID, "default_branch": "master", "issues": [], "pulls": [], "former_paths": ["Octocoders/Hello-World"]}
    github_forge.repos[("Octocoders", "Hello-World")] = {"id": NEW_ID, "default_branch": "master", "issues": [],
                                                         "pulls": []}
    return github_forge


@pytest.fixture
def forge_with_redirect(github_forge):
    """The forge: only the renamed repository; its old name redirects to it."""
    github_forge.repos[("Octocoders", "Hello-World-legacy")] = {
        "id": OLD_ID, "default_branch": "master", "issues": [], "pulls": [], "former_paths": ["Octocoders/Hello-World"]}
    return github_forge


def new_repository_event(action: str = "opened", number: int = 55) -> dict:
    """issues.<action> of issue ``number`` in the new Octocoders/Hello-World (the recorded repository.created's)."""
    repository = payload("github/webhooks/repository/created.json")["repository"]
    repository["id"] = NEW_ID
    body = payload("github/webhooks/issues/opened.json")
    body["action"] = action
    body["repository"] = repository
    body["issue"].update(id=9_550_000 + number, number=number, title=f"New repository's issue {number}",
                         html_url=f"https://github.com/Octocoders/Hello-World/issues/{number}",
                         repository_url="https://api.github.com/repos/Octocoders/Hello-World")
    return body


def renamed_repository_event(number: int = 55) -> dict:
    body = payload("github/webhooks/issues/opened.json")
    body["repository"] = payload("github/webhooks/repository/renamed.json")["repository"]
    body["repository"].update(name="Hello-World-legacy", full_name="Octocoders/Hello-World-legacy")
    body["issue"].update(id=9_560_000 + number, number=number, title=f"Renamed repository's issue {number}",
                         html_url=f"https://github.com/Octocoders/Hello-World-legacy/issues/{number}",
                         repository_url="https://api.github.com/repos/Octocoders/Hello-World-legacy")
    return body


# --- adding a repository (the service behind the admin's and the importer's adds) -----

@pytest.mark.parametrize("slug", ["odk", "aajeevika"], ids=["same-project", "another-project"])
def test_adding_the_new_repository_with_the_old_name_makes_a_new_repository(session, renamed,
                                                                            forge_with_new_repository, slug):
    parsed = parse_repository_url("https://github.com/Octocoders/Hello-World")
    new = add_repository(project(session, slug), parsed, label=None, actor="admin:test")
    assert new.id != renamed.id
    assert (new.full_name, new.forge_id, new.project.slug) == ("Octocoders/Hello-World", NEW_ID, slug)
    assert (renamed.full_name, renamed.forge_id) == ("Octocoders/Hello-World-legacy", OLD_ID)
    assert find_repository("github.com", "Octocoders", "Hello-World").id == new.id
    assert find_repository("github.com", "Octocoders", "Hello-World-legacy").id == renamed.id


def test_adding_a_former_name_the_forge_redirects_is_the_renamed_repository(session, renamed, forge_with_redirect):
    parsed = parse_repository_url("https://github.com/Octocoders/Hello-World")
    assert add_repository(project(session, "odk"), parsed, label=None, actor="admin:test").id == renamed.id
    with pytest.raises(RepositoryConflict):
        add_repository(project(session, "aajeevika"), parsed, label=None, actor="admin:test")


def test_registry_import_of_the_new_repository_with_the_old_name_adds_it(session, renamed,
                                                                         forge_with_new_repository):
    record = next(r for r in json.loads((SEED / "dpg" / "registry.json").read_text()) if r["_id"] == "aajeevika")
    record = copy.deepcopy(record)
    record.update(_id="hello-commons", _path="nominees/hello-commons.json", name="Hello Commons",
                  repositories=[{"name": "main", "url": "https://github.com/Octocoders/Hello-World"}])
    summary = import_registry([record])
    assert summary.count("created") == 1
    hello = project(session, "hello-commons")
    assert [(r.full_name, r.forge_id) for r in hello.repositories] == [("Octocoders/Hello-World", NEW_ID)]
    assert renamed.project.slug == "odk"


# --- webhook matching ------------------------------------------------------------------

def test_webhooks_of_the_new_repository_are_its_own(client, session, renamed, forge_with_new_repository):
    new = add_repository(project(session, "odk"), parse_repository_url("https://github.com/Octocoders/Hello-World"),
                         label=None, actor="admin:test")
    assert post_github(client, "issues", new_repository_event(), "new-repo-opened").status_code == 202
    assert post_github(client, "issues", renamed_repository_event(), "old-repo-opened").status_code == 202
    delivered = dict(session.execute(select(WebhookDelivery.delivery_id, WebhookDelivery.repository_id).where(
        WebhookDelivery.delivery_id.in_(["new-repo-opened", "old-repo-opened"]))).all())
    assert delivered == {"new-repo-opened": new.id, "old-repo-opened": renamed.id}
    assert find_item("github.com", 9_550_055).repository_id == new.id
    assert find_item("github.com", 9_560_055).repository_id == renamed.id


def test_webhooks_of_a_new_repository_outside_the_commons_never_reach_the_renamed_one(client, session, renamed):
    assert post_github(client, "issues", new_repository_event(), "stranger").status_code == 202
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "stranger"))
    assert (delivery.status, delivery.outcome) == (DeliveryStatus.ignored, "repository not in the commons")
    assert find_item("github.com", 9_550_055) is None


# --- closing-reference resolution --------------------------------------------------------

def _pull_in_renamed(number: int, body: str) -> dict:
    data = payload("github/webhooks/pull_request/closed.unmerged.json")
    data["repository"] = renamed_repository_event()["repository"]
    data["pull_request"].update(number=number, id=880000 + number, body=body, merged=True,
                                merged_at="2019-05-15T15:20:40Z",
                                html_url=f"https://github.com/Octocoders/Hello-World-legacy/pull/{number}")
    data["pull_request"]["base"]["ref"] = "master"
    return data


def test_a_reference_by_the_old_name_resolves_to_the_new_repository(client, session, renamed,
                                                                   forge_with_new_repository):
    new = add_repository(project(session, "odk"), parse_repository_url("https://github.com/Octocoders/Hello-World"),
                         label=None, actor="admin:test")
    post_github(client, "issues", new_repository_event())
    post_github(client, "issues", renamed_repository_event())
    post_github(client, "pull_request", _pull_in_renamed(70, "Fixes Octocoders/Hello-World#55"))
    link = session.scalar(select(ItemLink).where(ItemLink.target_number == 55))
    assert (link.item.repository_id, link.item.number, link.kind) == (new.id, 55, ItemLinkKind.closes)
    assert find_item("github.com", 9_550_055).solved_by.number == 70
    assert find_item("github.com", 9_560_055).solved_by is None


def test_a_reference_by_the_old_name_redirects_while_no_repository_holds_it(client, session, renamed):
    post_github(client, "issues", renamed_repository_event())
    post_github(client, "pull_request", _pull_in_renamed(71, "Fixes Octocoders/Hello-World#55"))
    assert find_item("github.com", 9_560_055).solved_by.number == 71


def test_a_merged_reference_to_the_new_repository_waits_for_its_issue(client, session, renamed,
                                                                      forge_with_new_repository):
    """The pull request names Octocoders/Hello-World#56 before that issue reaches
    us: when it does, the link is the new repository's, never the renamed one's."""
    post_github(client, "issues", renamed_repository_event(56))
    new = add_repository(project(session, "odk"), parse_repository_url("https://github.com/Octocoders/Hello-World"),
                         label=None, actor="admin:test")
    post_github(client, "pull_request", _pull_in_renamed(72, "Fixes Octocoders/Hello-World#56"))
    assert find_item("github.com", 9_560_056).solved_by is None
    post_github(client, "issues", new_repository_event(number=56))
    item = find_item("github.com", 9_550_056)
    assert (item.repository_id, item.solved_by.number) == (new.id, 72)


# --- GitLab: a project path reused -------------------------------------------------------

def _gitlab_issue_hook(project_id: int, path: str, iid: int) -> dict:
    body = payload("gitlab/webhooks/issue/open.json")
    body["project"].update(id=project_id, path_with_namespace=path, web_url=f"https://gitlab.example.org/{path}")
    body["object_attributes"].update(id=project_id * 1000 + iid, iid=iid, project_id=project_id,
                                     url=f"https://gitlab.example.org/{path}/-/issues/{iid}")
    return body


def test_a_gitlab_project_path_reused_by_a_new_project_is_a_new_repository(client, session, gitlab_forge):
    old = make_repository("health", "tool", host="gitlab.example.org", forge_id=100, default_branch="main")
    move_repository(old, "health", "tool-legacy", actor="test")  # as sync follows a rename
    gitlab_forge.repos[("health", "tool-legacy")] = {"id": 100, "issues": [], "pulls": [],
                                                     "former_paths": ["health/tool"]}
    gitlab_forge.repos[("health", "tool")] = {"id": 200, "issues": [], "pulls": []}
    new = add_repository(project(session, "odk"), parse_repository_url("https://gitlab.example.org/health/tool"),
                         label=None, actor="admin:test")
    assert (new.id != old.id, new.forge_id) == (True, 200)
    assert post_gitlab(client, "Issue Hook", _gitlab_issue_hook(200, "health/tool", 5)).status_code == 202
    assert post_gitlab(client, "Issue Hook", _gitlab_issue_hook(100, "health/tool-legacy", 5)).status_code == 202
    owners = {item.forge_id: item.repository_id for item in session.scalars(
        select(BacklogItem).where(BacklogItem.forge_host == "gitlab.example.org"))}
    assert owners == {200005: new.id, 100005: old.id}


def test_syncing_an_entry_whose_path_redirects_to_a_held_repository_fails_clearly(session, renamed,
                                                                                  forge_with_redirect):
    """An entry added by path while we did not know the path was a former name
    (no alias yet): the forge answers with the renamed repository's id. The
    sync stops with a clear reason instead of giving the entry that id."""
    from jobs.sync import sync_repository
    from marketplace.forges.models import Repository, SyncRun, SyncStatus

    entry = Repository(project=project(session, "odk"), forge=renamed.forge, host="github.com", owner="Octocoders",
                       name="Hello-World", path_key="octocoders/hello-world",
                       url="https://github.com/Octocoders/Hello-World")
    session.add(entry)
    session.flush()
    run = session.get(SyncRun, sync_repository(entry.id, full=True))
    assert (entry.forge_id, entry.sync_status) == (None, SyncStatus.failed)
    assert run.error == ("github.com/Octocoders/Hello-World is a former name of Octocoders/Hello-World-legacy "
                         f"(same forge id {OLD_ID}): it is that repository; remove this entry")
