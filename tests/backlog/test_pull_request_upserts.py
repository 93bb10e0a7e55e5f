"""upsert_pull_request (marketplace/backlog/service.py): forges deliver pull-request
events out of order; an older payload after a newer one changes nothing."""
from dataclasses import replace
from datetime import datetime

from marketplace.backlog.models import PullRequestState
from marketplace.backlog.service import upsert_pull_request
from marketplace.forges.types import ForgePullRequest
from tests.conftest import make_repository

OPENED = datetime(2026, 3, 1, 9, 0, 0)


def a_pull(**changes) -> ForgePullRequest:
    pull = ForgePullRequest(
        number=42, title="Add export", body="Fixes #7", state="open", author_login="ama", author_forge_id=501,
        html_url="https://github.com/org-a/repo-x/pull/42", created_at=OPENED, updated_at=OPENED,
        closed_at=None, merged_at=None, forge_id=9042)
    return replace(pull, **changes)


def test_an_older_pull_request_payload_after_a_newer_one_changes_nothing(session):
    repo = make_repository("org-a", "repo-x")
    newer = a_pull(title="Add CSV export", body="Fixes #8", state="closed",
                   updated_at=datetime(2026, 3, 2, 9, 0, 0), closed_at=datetime(2026, 3, 2, 9, 0, 0))
    assert upsert_pull_request(repo, newer).outcome == "created"
    older = a_pull(updated_at=datetime(2026, 3, 1, 12, 0, 0))
    result = upsert_pull_request(repo, older)
    assert result.outcome == "stale"
    row = result.row
    assert (row.title, row.body, row.state, row.forge_updated_at, row.forge_closed_at) == (
        "Add CSV export", "Fixes #8", PullRequestState.closed, datetime(2026, 3, 2, 9, 0, 0),
        datetime(2026, 3, 2, 9, 0, 0))


def test_pull_request_payloads_in_order_apply_each_and_the_same_one_twice_is_unchanged(session):
    repo = make_repository("org-a", "repo-x")
    assert upsert_pull_request(repo, a_pull()).outcome == "created"
    assert upsert_pull_request(repo, a_pull()).outcome == "unchanged"
    later = a_pull(title="Add CSV export", updated_at=datetime(2026, 3, 1, 9, 0, 1))
    result = upsert_pull_request(repo, later)
    assert (result.outcome, result.row.title) == ("updated", "Add CSV export")


def test_a_merged_pull_request_stays_merged_whatever_a_later_payload_says(session):
    repo = make_repository("org-a", "repo-x")
    merged_at = datetime(2026, 3, 2, 9, 0, 0)
    upsert_pull_request(repo, a_pull(state="merged", merged_at=merged_at, closed_at=merged_at, updated_at=merged_at))
    result = upsert_pull_request(repo, a_pull(state="closed", updated_at=datetime(2026, 3, 3, 9, 0, 0),
                                              closed_at=merged_at))
    assert (result.row.state, result.row.merged_at) == (PullRequestState.merged, merged_at)
