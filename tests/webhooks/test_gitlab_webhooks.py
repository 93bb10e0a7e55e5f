"""GitLab webhooks and REST: real recorded hooks, keyed by project id and iid."""
import pytest
from sqlalchemy import func, select

from jobs.sync import sync_repository
from marketplace.backlog.models import BacklogItem, ItemState, PullRequest, PullRequestState
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_gitlab


@pytest.fixture
def woodpecker(session):
    """anbraten/woodpecker-test on gitlab.com (project id 32059612 in the recorded hooks)."""
    return make_repository("anbraten", "woodpecker-test", host="gitlab.com")


def _merge_request(iid: int, *, action: str | None, state: str) -> dict:
    data = payload("gitlab/webhooks/merge_request/merge.json")
    attributes = data["object_attributes"]
    attributes.update(iid=iid, id=90_000 + iid, state=state,
                      url=f"https://gitlab.com/anbraten/woodpecker-test/-/merge_requests/{iid}")
    if action is None:
        attributes.pop("action")
    else:
        attributes["action"] = action
    return data


def test_merge_request_hooks_by_action_or_state(client, session, woodpecker):
    for data in (
        _merge_request(650, action="merge", state="merged"),
        _merge_request(651, action="close", state="closed"),
        _merge_request(652, action=None, state="merged"),
    ):
        assert post_gitlab(client, "Merge Request Hook", data).status_code == 202
    states = dict(session.execute(select(PullRequest.number, PullRequest.state).where(
        PullRequest.repository_id == woodpecker.id)).all())
    assert states == {650: PullRequestState.merged, 651: PullRequestState.closed, 652: PullRequestState.merged}
    assert woodpecker.forge_id == 32059612


def test_bad_gitlab_token_is_401_and_stores_nothing(client, session, woodpecker):
    before = session.scalar(select(func.count()).select_from(WebhookDelivery))
    response = post_gitlab(client, "Merge Request Hook", _merge_request(650, action="merge", state="merged"),
                           token="wrong")
    assert response.status_code == 401
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == before


def test_real_issue_hooks_open_close_reopen(client, session):
    repo = make_repository("kanboard", "test-webhook", host="gitlab.com")
    for name, state in (("open", ItemState.open), ("close", ItemState.closed), ("reopen", ItemState.open)):
        data = payload(f"gitlab/webhooks/issue/{name}.json")
        assert post_gitlab(client, "Issue Hook", data).status_code == 202
        item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
        assert (item.number, item.state) == (5, state)
    # The 2016 hooks have no project.id: the issue's project_id is learnt.
    assert repo.forge_id == 320820
    statuses = set(session.scalars(select(WebhookDelivery.status).where(WebhookDelivery.repository_id == repo.id)))
    assert statuses == {DeliveryStatus.processed}


def _gitlab_mr(iid: int, updated: str, state: str = "merged", target: str = "main", description: str = "") -> dict:
    return {
        "id": 70_000 + iid, "iid": iid, "project_id": 4242, "title": f"MR {iid}", "description": description,
        "state": state, "created_at": "2026-01-01T00:00:00.000Z", "updated_at": updated,
        "merged_at": updated if state == "merged" else None, "closed_at": None,
        "target_branch": target, "source_branch": "feature", "source_project_id": 4242,
        "target_project_id": 4242, "author": {"id": 9, "username": "dev"},
        "web_url": f"https://gitlab.example.org/health/records/-/merge_requests/{iid}", "labels": [],
    }


def _gitlab_issue(iid: int, updated: str, state: str = "opened") -> dict:
    return {
        "id": 60_000 + iid, "iid": iid, "project_id": 4242, "title": f"Issue {iid}", "description": "d",
        "state": state, "created_at": "2026-01-01T00:00:00.000Z", "updated_at": updated, "closed_at": None,
        "labels": ["bug"], "author": {"id": 8, "username": "reporter"}, "user_notes_count": 2,
        "web_url": f"https://gitlab.example.org/health/records/-/issues/{iid}",
    }


def test_gitlab_sync_uses_the_project_id_and_iid(session, gitlab_forge):
    repo = make_repository("health", "records", host="gitlab.example.org")
    gitlab_forge.repos[("health", "records")] = {
        "id": 4242, "default_branch": "main",
        "issues": [_gitlab_issue(7, "2026-02-01T00:00:00.000Z")],
        "pulls": [_gitlab_mr(650, "2026-02-02T00:00:00.000Z", description="Closes #7")],
    }
    sync_repository(repo.id, full=True)
    paths = [r.path for r in gitlab_forge.received]
    assert paths == [
        "/api/v4/projects/health%2Frecords",
        "/api/v4/projects/4242/issues",
        "/api/v4/projects/4242/merge_requests",
    ]
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
    assert (item.number, item.label_names, item.solved_by.number) == (7, ["bug"], 650)
    from marketplace.forges.clients import client_for

    client = client_for(repo)
    assert client.merge_request(repo, 650)["iid"] == 650
    assert gitlab_forge.received[-1].path == "/api/v4/projects/4242/merge_requests/650"
