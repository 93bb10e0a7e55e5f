"""webhook event handling with the recorded payloads and variants."""
import pytest
from sqlalchemy import select

from marketplace.backlog.models import BacklogItem, ItemState, PullRequest, PullRequestState
from marketplace.backlog.service import find_item
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_github, post_gitlab
from tests.webhooks.test_github_webhooks import _issue, _pull


@pytest.fixture
def hello(session):
    return make_repository("Codertocat", "Hello-World")


def _delivery(session, delivery_id):
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))


def _edited_after_merge(number, body, updated_at):
    data = _pull(number, body, merged=True)
    data["action"] = "edited"
    data["pull_request"]["updated_at"] = updated_at
    return data


def test_editing_a_merged_pull_request_later_solves_nothing_more(client, session, hello):
    """GitHub closes issues when the PR is merged; editing the body of an already
    merged PR closes nothing. Here the edit makes #592 'solved' (a payout trigger)."""
    _issue(client, 591)
    other = _issue(client, 592)
    post_github(client, "pull_request", _pull(21, "Fixes #591", merged=True))
    assert find_item("github.com", 700591).solved_by.number == 21
    # A year later the author edits the merged PR's body.
    post_github(client, "pull_request", _edited_after_merge(21, "Fixes #591\nFixes #592", "2020-06-01T00:00:00Z"))
    assert session.get(BacklogItem, other.id).solved_by_id is None


def test_editing_a_merged_pull_request_later_keeps_what_it_solved(client, session, hello):
    item = _issue(client, 591)
    post_github(client, "pull_request", _pull(21, "Fixes #591", merged=True))
    assert session.get(BacklogItem, item.id).solved_by.number == 21
    post_github(client, "pull_request", _edited_after_merge(21, "(description rewritten)", "2020-06-01T00:00:00Z"))
    assert session.get(BacklogItem, item.id).solved_by is not None


def test_a_huge_number_reference_is_ignored_and_the_delivery_processed(client, session, hello):
    """'#99999999999' (e.g. in a pasted log) overflows item_link.target_number (int4):
    the whole delivery fails and the merged PR is never stored."""
    item = _issue(client, 591)
    post_github(client, "pull_request", _pull(22, "Fixes #591\n\nsee build #99999999999", merged=True),
                "review-longref")
    delivery = _delivery(session, "review-longref")
    assert delivery.status is DeliveryStatus.processed, delivery.outcome
    assert session.get(BacklogItem, item.id).solved_by is not None


def test_installation_repositories_removed_forgets_the_installation(client, session):
    space = make_repository("Codertocat", "Space")
    added = payload("github/webhooks/installation_repositories/added.json")
    post_github(client, "installation_repositories", added)
    assert space.installation_id == added["installation"]["id"]
    removed = payload("github/webhooks/installation_repositories/added.json")
    removed["action"] = "removed"
    removed["repositories_removed"], removed["repositories_added"] = removed["repositories_added"], []
    assert post_github(client, "installation_repositories", removed).status_code == 202
    session.refresh(space)
    assert space.installation_id is None


def test_deleted_delivered_before_a_late_opened_stays_deleted(client, session, hello):
    """Out of order: 'deleted' (2021) processed before 'opened' (2019) of the same issue."""
    post_github(client, "issues", payload("github/webhooks/issues/deleted.json"))
    post_github(client, "issues", payload("github/webhooks/issues/opened.json"))
    item = find_item("github.com", 444500041)
    assert item is None or item.hidden


def test_out_of_order_issue_and_pull_request_events(client, session, hello):
    newer = payload("github/webhooks/issues/opened.json")
    newer["action"] = "closed"
    newer["issue"].update(state="closed", state_reason="not_planned", updated_at="2019-06-01T00:00:00Z",
                          closed_at="2019-06-01T00:00:00Z", title="newer")
    post_github(client, "issues", newer)
    post_github(client, "issues", payload("github/webhooks/issues/opened.json"))  # older, late
    item = find_item("github.com", 444500041)
    assert (item.state, item.state_reason, item.title) == (ItemState.closed, "not_planned", "newer")
    post_github(client, "pull_request", _pull(50, "x", merged=True))
    reopened = _pull(50, "x", merged=False, state="open")
    reopened["pull_request"]["updated_at"] = "2030-01-01T00:00:00Z"
    post_github(client, "pull_request", reopened)
    pr = session.scalar(select(PullRequest).where(PullRequest.repository_id == hello.id, PullRequest.number == 50))
    assert pr.state is PullRequestState.merged


def test_null_and_missing_fields_do_not_crash(client, session, hello):
    issue = payload("github/webhooks/issues/opened.json")
    issue["issue"].update(user=None, body=None)
    issue["issue"].pop("labels")
    assert post_github(client, "issues", issue, "review-null-issue").status_code == 202
    assert _delivery(session, "review-null-issue").status is DeliveryStatus.processed
    pr = _pull(60, None, merged=True)
    pr["pull_request"].update(user=None, body=None)
    pr["pull_request"]["head"]["repo"] = None
    pr["pull_request"].pop("labels")
    assert post_github(client, "pull_request", pr, "review-null-pr").status_code == 202
    assert _delivery(session, "review-null-pr").status is DeliveryStatus.processed


def test_gitlab_issue_hook_without_action_and_mr_hook_update(client, session):
    repo = make_repository("kanboard", "test-webhook", host="gitlab.com")
    data = payload("gitlab/webhooks/issue/close.json")
    data["object_attributes"].pop("action", None)
    assert post_gitlab(client, "Issue Hook", data).status_code == 202
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
    assert item.state is ItemState.closed


def test_repository_transferred_for_a_registry_repo_without_id(client, session):
    repo = make_repository("octocat", "Hello-World")
    assert post_github(client, "repository", payload("github/webhooks/repository/transferred.json")).status_code == 202
    assert (repo.full_name, repo.forge_id) == ("Octocoders/Hello-World", 186853261)
    assert [a.full_name for a in repo.aliases] == ["octocat/Hello-World"]


@pytest.mark.parametrize("state,expected", [("opened", "open"), ("closed", "closed"), ("locked", "open"),
                                            ("merged", "merged")])
def test_gitlab_mr_hook_without_action_uses_state(client, session, state, expected):
    from tests.webhooks.test_gitlab_webhooks import _merge_request

    repo = make_repository("anbraten", "woodpecker-test", host="gitlab.com")
    assert post_gitlab(client, "Merge Request Hook", _merge_request(700, action=None, state=state)).status_code == 202
    pr = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id))
    assert pr.state.value == expected


def test_gitlab_update_after_merge_keeps_merged(client, session):
    from tests.webhooks.test_gitlab_webhooks import _merge_request

    repo = make_repository("anbraten", "woodpecker-test", host="gitlab.com")
    post_gitlab(client, "Merge Request Hook", _merge_request(701, action="merge", state="merged"))
    late = _merge_request(701, action="reopen", state="opened")
    late["object_attributes"]["updated_at"] = "2030-01-01 00:00:00 UTC"
    post_gitlab(client, "Merge Request Hook", late)
    pr = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id))
    assert pr.state is PullRequestState.merged


def test_an_overlong_owner_repo_reference_is_ignored_and_the_delivery_processed(client, session, hello):
    """A reference path longer than item_link.target_path (511) fails the whole delivery."""
    body = "Fixes #591\nsee " + "a" * 300 + "/" + "b" * 300 + "#5"
    item = _issue(client, 591)
    post_github(client, "pull_request", _pull(23, body, merged=True), "review-longpath")
    delivery = _delivery(session, "review-longpath")
    assert delivery.status is DeliveryStatus.processed, delivery.outcome[:120]
    assert session.get(BacklogItem, item.id).solved_by is not None
