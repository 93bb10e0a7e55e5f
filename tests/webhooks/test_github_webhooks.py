"""GitHub webhooks: real recorded payloads, signed with the test secret."""
import json

import pytest
from sqlalchemy import func, select

from marketplace.backlog.models import BacklogItem, ItemLink, ItemLinkKind, PullRequest, PullRequestState
from marketplace.backlog.service import find_item
from marketplace.forges.models import Repository
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from marketplace.webhooks.views import github_signature_valid
from tests.conftest import FIXTURES, make_repository
from tests.webhooks.helpers import payload, post_github


def deliveries(session) -> int:
    return session.scalar(select(func.count()).select_from(WebhookDelivery))


@pytest.fixture
def hello(session):
    """Codertocat/Hello-World, as the registry would know it: by path, no id yet."""
    return make_repository("Codertocat", "Hello-World")


def test_github_documented_signature_vector():
    vector = json.loads((FIXTURES / "github" / "webhooks" / "signature-test-vector.json").read_text())
    assert github_signature_valid(vector["secret"], vector["payload"].encode(), vector["X-Hub-Signature-256"])
    assert not github_signature_valid(vector["secret"], b"Hello, World?", vector["X-Hub-Signature-256"])


def test_signed_real_issue_opened_shows_up_in_the_api(client, session, hello):
    response = post_github(client, "issues", payload("github/webhooks/issues/opened.json"), "d-opened")
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "d-opened"))
    assert delivery.status is DeliveryStatus.processed
    assert (delivery.event, delivery.action, delivery.repository_id) == ("issues", "opened", hello.id)
    assert hello.forge_id == 186853002  # learnt from the payload
    items = client.get("/api/v1/items", query_string={"q": "spelling README"}).get_json()["items"]
    assert [(i["title"], i["forge"]["id"], i["forge"]["number"]) for i in items] == [
        ("Spelling error in the README file", 444500041, 1)
    ]


def test_signed_merged_pull_request_that_closes_the_item_marks_it_solved(client, session):
    # codinasion/codinasion-bot: issue #2 closed; the recorded merged pull request
    # names the repository "codinasion-bot-try" (renamed) under the same id.
    repo = make_repository("codinasion", "codinasion-bot")
    post_github(client, "issues", payload("github/webhooks/issues/closed.json"))
    pull = payload("github/webhooks/pull_request/closed.merged.json")
    assert pull["repository"]["id"] == repo.forge_id == 511552847
    pull["pull_request"]["body"] = "Fixes #2\n\ndfds"
    response = post_github(client, "pull_request", pull)
    assert response.status_code == 202
    item = find_item("github.com", 1299020697)
    assert item.solved_by is not None
    assert (item.solved_by.number, item.solved_by.state) == (14, PullRequestState.merged)


def test_bad_or_missing_signature_is_401_and_stores_nothing(client, session, hello):
    before = deliveries(session)
    body = json.dumps(payload("github/webhooks/issues/opened.json")).encode()
    assert post_github(client, "issues", body, signature="sha256=" + "0" * 64).status_code == 401
    assert post_github(client, "issues", body, signature="").status_code == 401
    tampered = body.replace(b"Spelling error", b"Spelling errors")
    from tests.webhooks.helpers import sign

    assert post_github(client, "issues", tampered, signature=sign(body)).status_code == 401
    assert deliveries(session) == before


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_body_is_400_and_stores_nothing(client, session, body):
    before = deliveries(session)
    response = post_github(client, "issues", body)
    assert response.status_code == 400
    assert deliveries(session) == before


def test_missing_delivery_id_is_400(client, session):
    raw = json.dumps({"action": "opened"}).encode()
    from tests.webhooks.helpers import sign

    response = client.post("/webhooks/github", data=raw, headers={
        "X-GitHub-Event": "issues", "X-Hub-Signature-256": sign(raw)})
    assert response.status_code == 400


def test_unhandled_event_and_unknown_repository_are_recorded_as_ignored(client, session, hello):
    # issue_comment is handled since issue 22 (commands in comments): "star" is not.
    comment = post_github(client, "star", payload("github/webhooks/issues/opened.json"), "d-comment")
    assert comment.status_code == 202
    foreign = payload("github/webhooks/issues/opened.json")
    foreign["repository"].update(id=1, full_name="someone/else", name="else")
    foreign["repository"]["owner"]["login"] = "someone"
    assert post_github(client, "issues", foreign, "d-foreign").status_code == 202
    outcomes = dict(session.execute(select(WebhookDelivery.delivery_id, WebhookDelivery.outcome).where(
        WebhookDelivery.delivery_id.in_(["d-comment", "d-foreign"]))).all())
    assert outcomes == {"d-comment": "event 'star' not handled", "d-foreign": "repository not in the commons"}
    statuses = set(session.scalars(select(WebhookDelivery.status).where(
        WebhookDelivery.delivery_id.in_(["d-comment", "d-foreign"]))))
    assert statuses == {DeliveryStatus.ignored}


def test_the_same_delivery_twice_and_hours_later_has_one_effect(client, session, hello):
    body = payload("github/webhooks/issues/opened.json")
    first = post_github(client, "issues", body, "same-id")
    second = post_github(client, "issues", body, "same-id")
    # Two hours later the forge redelivers it (the body changed meanwhile, say).
    body["issue"]["title"] = "Changed by a redelivery"
    body["issue"]["updated_at"] = "2030-01-01T00:00:00Z"
    third = post_github(client, "issues", body, "same-id")
    assert [first.status_code, second.status_code, third.status_code] == [202, 200, 200]
    assert second.get_json()["status"] == "duplicate"
    assert session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.delivery_id == "same-id")) == 1
    item = find_item("github.com", 444500041)
    assert item.title == "Spelling error in the README file"


def test_labeled_event_on_a_pull_request_creates_no_item(client, session, hello):
    labeled = payload("github/webhooks/issues/labeled.json")
    labeled["issue"]["number"] = 11
    labeled["issue"]["id"] = 7011
    labeled["issue"]["pull_request"] = {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/11"}
    assert post_github(client, "issues", labeled).status_code == 202
    assert find_item("github.com", 7011) is None
    assert session.scalar(select(func.count()).select_from(BacklogItem).where(
        BacklogItem.repository_id == hello.id)) == 0


def _transfer_payloads():
    """issues.transferred from org-a/repo-x#144 (id 1000001) to org-a/repo-y#85 (id 1000002),
    and the new issue's issues.opened, in the recorded shapes."""
    transferred = payload("github/webhooks/issues/transferred.json")
    old = transferred["issue"]
    old.update(id=1000001, number=144, html_url="https://github.com/org-a/repo-x/issues/144",
               repository_url="https://api.github.com/repos/org-a/repo-x")
    transferred["repository"].update(id=501, name="repo-x", full_name="org-a/repo-x")
    transferred["repository"]["owner"]["login"] = "org-a"
    new = transferred["changes"]["new_issue"]
    new.update(id=1000002, number=85, html_url="https://github.com/org-a/repo-y/issues/85",
               repository_url="https://api.github.com/repos/org-a/repo-y", title=old["title"])
    new_repo = transferred["changes"]["new_repository"]
    new_repo.update(id=502, name="repo-y", full_name="org-a/repo-y")
    new_repo["owner"]["login"] = "org-a"
    opened_new = payload("github/webhooks/issues/opened.json")
    opened_new["issue"] = json.loads(json.dumps(new))
    opened_new["repository"] = json.loads(json.dumps(new_repo))
    opened_old = payload("github/webhooks/issues/opened.json")
    opened_old["issue"] = json.loads(json.dumps(old))
    opened_old["issue"]["state"] = "open"
    opened_old["repository"] = json.loads(json.dumps(transferred["repository"]))
    return opened_old, transferred, opened_new


@pytest.mark.parametrize("new_first", [True, False], ids=["opened-before-transferred", "opened-after"])
def test_transferred_issue_is_one_item_following_the_new_issue(client, session, github_forge, new_first):
    repo_x = make_repository("org-a", "repo-x")
    repo_y = make_repository("org-a", "repo-y")
    opened_old, transferred, opened_new = _transfer_payloads()
    post_github(client, "issues", opened_old)
    original_id = find_item("github.com", 1000001).id
    order = [("issues", opened_new), ("issues", transferred)]
    for event, body in (order if new_first else reversed(order)):
        assert post_github(client, event, body).status_code == 202
    items = session.scalars(select(BacklogItem).where(BacklogItem.repository_id.in_([repo_x.id, repo_y.id]))).all()
    assert len(items) == 1
    item = items[0]
    assert item.id == original_id
    assert (item.forge_id, item.repository_id, item.number) == (1000002, repo_y.id, 85)
    assert [(a.forge_id, a.repository_full_name, a.number) for a in item.aliases] == [(1000001, "org-a/repo-x", 144)]
    assert find_item("github.com", 1000001).id == item.id
    # Later the old repository no longer has the issue (the forge answers 404
    # for its old URL and a full sync of repo-x lists nothing): the item stays.
    from jobs.sync import sync_repository

    github_forge.repos[("org-a", "repo-x")] = {"id": 501, "default_branch": "main", "issues": [], "pulls": []}
    sync_repository(repo_x.id, full=True)
    assert session.get(BacklogItem, item.id).hidden is False
    assert session.get(BacklogItem, item.id).deleted_at is None


def test_deleted_issue_hides_the_item_and_answers_410(client, session, hello):
    post_github(client, "issues", payload("github/webhooks/issues/opened.json"))
    post_github(client, "issues", payload("github/webhooks/issues/deleted.json"))
    item = find_item("github.com", 444500041)
    assert item.hidden is True and item.deleted_at is not None
    assert client.get(f"/api/v1/items/{item.id}").status_code == 410


def _pull(number: int, body: str, *, merged: bool, base: str = "master", state: str = "closed") -> dict:
    data = payload("github/webhooks/pull_request/closed.unmerged.json")
    pr = data["pull_request"]
    pr.update(number=number, id=880000 + number, body=body, merged=merged, state=state,
              html_url=f"https://github.com/Codertocat/Hello-World/pull/{number}")
    pr["merged_at"] = "2019-05-15T15:20:40Z" if merged else None
    pr["base"]["ref"] = base
    return data


def _issue(hello_client, number: int):
    body = payload("github/webhooks/issues/opened.json")
    body["issue"].update(number=number, id=700000 + number, title=f"Issue {number}",
                         html_url=f"https://github.com/Codertocat/Hello-World/issues/{number}")
    post_github(hello_client, "issues", body)
    return find_item("github.com", 700000 + number)


def test_unmerged_close_does_not_solve_and_the_merged_one_does(client, session, hello):
    item = _issue(client, 591)
    post_github(client, "pull_request", _pull(20, "Closes #591", merged=False))
    assert session.get(BacklogItem, item.id).solved_by_id is None
    post_github(client, "pull_request", _pull(21, "Fixes #591", merged=True))
    solver = session.get(BacklogItem, item.id).solved_by
    assert solver.number == 21 and solver.state is PullRequestState.merged


def test_closing_keywords_links_cross_project_and_mentions(client, session, hello):
    for number in (591, 592, 263, 593):
        _issue(client, number)
    body = ("Closes #591\nFixes #592\nFixes other-org/other-repo#5\n"
            "fixes the same bug as #263\nFixes issue #593")
    post_github(client, "pull_request", _pull(30, body, merged=False, state="open"))
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == hello.id, PullRequest.number == 30))
    links = {(link.target, link.kind) for link in pull.links}
    assert links == {
        ("Codertocat/Hello-World#591", ItemLinkKind.closes),
        ("Codertocat/Hello-World#592", ItemLinkKind.closes),
        ("other-org/other-repo#5", ItemLinkKind.cross_project),
        ("Codertocat/Hello-World#263", ItemLinkKind.mention),
        ("Codertocat/Hello-World#593", ItemLinkKind.mention),
    }
    assert {link.item.number for link in pull.links if link.item} == {591, 592, 263, 593}


def test_no_links_when_the_base_branch_is_not_the_default(client, session, hello):
    for number in (591, 592):
        _issue(client, number)
    post_github(client, "pull_request", _pull(31, "Closes #591\nFixes #592", merged=True, base="release-1.0"))
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == hello.id, PullRequest.number == 31))
    assert {link.kind for link in pull.links} == {ItemLinkKind.mention}
    assert session.scalar(select(func.count()).select_from(ItemLink).where(
        ItemLink.pull_request_id == pull.id, ItemLink.kind != ItemLinkKind.mention)) == 0
    assert find_item("github.com", 700591).solved_by_id is None


def test_merged_pull_request_of_a_deleted_account_from_a_deleted_fork(client, session, hello):
    data = _pull(40, "Fixes #1", merged=True)
    data["pull_request"]["user"] = None
    data["pull_request"]["head"]["repo"] = None
    assert post_github(client, "pull_request", data).status_code == 202
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == hello.id, PullRequest.number == 40))
    assert pull.state is PullRequestState.merged
    assert pull.author_login is None and pull.author_display == "deleted"
    assert pull.head_repository is None


def test_repository_renamed_is_followed_by_id(client, session):
    repo = make_repository("Octocoders", "Hello-World-old", forge_id=186853261)
    renamed = payload("github/webhooks/repository/renamed.json")
    assert post_github(client, "repository", renamed).status_code == 202
    assert repo.full_name == "Octocoders/Hello-World"
    assert [a.full_name for a in repo.aliases] == ["Octocoders/Hello-World-old"]
    session.refresh(repo)
    assert session.scalar(select(Repository).where(Repository.forge_id == 186853261)).id == repo.id


def test_ping_and_installation_are_recorded(client, session):
    assert post_github(client, "ping", payload("github/webhooks/ping/ping.json"), "d-ping").status_code == 202
    assert post_github(client, "installation", payload("github/webhooks/installation/created.json"),
                       "d-install").status_code == 202
    rows = dict(session.execute(select(WebhookDelivery.delivery_id, WebhookDelivery.status).where(
        WebhookDelivery.delivery_id.in_(["d-ping", "d-install"]))).all())
    assert rows == {"d-ping": DeliveryStatus.processed, "d-install": DeliveryStatus.processed}
