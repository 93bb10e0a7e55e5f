"""Full and incremental sync against a local forge that answers like GitHub."""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from jobs.sync import sync_repository
from marketplace.backlog.models import BacklogItem, ItemState, PullRequest
from marketplace.forges.github import GitHubClient
from marketplace.forges.http import ForgeError, ForgeHttp
from marketplace.forges.models import SyncRun, SyncRunStatus, SyncStatus
from marketplace.forges.sync import DbPageCache
from marketplace.timeutil import utcnow
from tests.conftest import FIXTURES, make_repository
from tests.forges.fake_forge import FakeForge, github_issue, github_pull


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def test_recorded_five_page_list_is_followed_by_its_link_headers():
    """octokit/fixtures paginate-issues: five recorded pages chained by real Link headers."""
    recording = json.loads((FIXTURES / "github" / "rest" / "paginate-issues.json").read_text())
    forge = FakeForge("github").start()
    try:
        by_path = {}
        for exchange in recording:
            headers = {"Link": exchange["headers"]["link"].replace("https://api.github.com", forge.url)}
            by_path[exchange["path"]] = (headers, exchange["response"])

        def answer(path, query, headers):
            key = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
            found = by_path[key]
            return 200, found[0], found[1]

        forge._answer = answer
        http = ForgeHttp(forge.url, {})
        page = http.get_page("/repos/octokit-fixture-org/paginate-issues/issues", {"per_page": "3"}, None)
        numbers = []
        while True:
            numbers += [issue["number"] for issue in page.items]
            if not page.next_url:
                break
            page = http.get_page(page.next_url, None, None)
        assert len(numbers) == 13 == len(set(numbers))
        assert [r.path for r in forge.received] == [
            "/repos/octokit-fixture-org/paginate-issues/issues",
            *["/repositories/1000/issues"] * 4,
        ]
    finally:
        forge.stop()


def test_list_with_a_pull_request_makes_two_items_and_one_pull_request(client, session, github_forge):
    repo = make_repository("org-a", "repo-x")
    github_forge.repos[("org-a", "repo-x")] = {
        "id": 77, "default_branch": "main", "pulls": [],
        "issues": [
            github_issue("org-a", "repo-x", 10, updated_at="2026-01-10T00:00:00Z"),
            github_issue("org-a", "repo-x", 11, updated_at="2026-01-11T00:00:00Z", pull=True),
            github_issue("org-a", "repo-x", 12, updated_at="2026-01-12T00:00:00Z"),
        ],
    }
    sync_repository(repo.id, full=True)
    assert sorted(session.scalars(select(BacklogItem.number).where(BacklogItem.repository_id == repo.id))) == [10, 12]
    assert list(session.scalars(select(PullRequest.number).where(PullRequest.repository_id == repo.id))) == [11]
    assert repo.forge_id == 77 and repo.default_branch == "main"
    # A "labeled" event on #11 (an issues event about a pull request) creates no item.
    from tests.webhooks.helpers import payload, post_github

    labeled = payload("github/webhooks/issues/labeled.json")
    labeled["repository"].update(id=77, name="repo-x", full_name="org-a/repo-x")
    labeled["issue"] = github_issue("org-a", "repo-x", 11, updated_at="2026-01-13T00:00:00Z", pull=True)
    assert post_github(client, "issues", labeled).status_code == 202
    assert sorted(session.scalars(select(BacklogItem.number).where(BacklogItem.repository_id == repo.id))) == [10, 12]


def _window_forge(forge, start: datetime):
    """A repository with 200 old issues, then 130 changed during a downtime."""
    issues = [
        github_issue("org-a", "repo-x", n, updated_at=iso(start - timedelta(days=30, minutes=n)))
        for n in range(1, 201)
    ]
    forge.repos[("org-a", "repo-x")] = {"id": 77, "default_branch": "main", "issues": issues, "pulls": []}
    return issues


def test_incremental_sync_after_downtime_follows_two_pages_and_moves_the_cursor(app, session, github_forge):
    repo = make_repository("org-a", "repo-x")
    start = datetime(2026, 3, 1, 12, 0, 0)
    issues = _window_forge(github_forge, start)
    sync_repository(repo.id, full=True)
    assert count(session, BacklogItem, BacklogItem.repository_id == repo.id) == 200
    first_cursor = repo.sync_cursor
    assert first_cursor == start - timedelta(days=30, minutes=1)

    # Downtime: 130 issues change; #5, created long ago, is closed in the window.
    for offset, issue in enumerate(issues[:130]):
        issue["updated_at"] = iso(start + timedelta(hours=1, minutes=offset))
        issue["title"] = f"Changed {issue['number']}"
    issues[4].update(state="closed", state_reason="completed", closed_at=issues[4]["updated_at"])
    github_forge.received.clear()
    sync_repository(repo.id)

    lists = [r for r in github_forge.received if r.path.endswith("/issues")]
    assert [r.status for r in lists] == [200, 200]
    assert lists[0].query["since"] == iso(first_cursor - timedelta(seconds=app.config["SYNC_OVERLAP_SECONDS"]))
    assert lists[1].query["page"] == "2"
    run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
    assert run.items_seen == 130 and run.status is SyncRunStatus.done
    assert count(session, BacklogItem, BacklogItem.repository_id == repo.id) == 200
    closed = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id, BacklogItem.number == 5))
    assert closed.state is ItemState.closed and closed.state_reason == "completed"
    assert repo.sync_cursor == start + timedelta(hours=1, minutes=129)


def test_overlap_re_reads_create_no_duplicates(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    start = datetime(2026, 3, 1, 12, 0, 0)
    issues = _window_forge(github_forge, start)
    sync_repository(repo.id, full=True)
    # One issue changes a minute after the cursor: inside the overlap window
    # the previous newest issue is read again.
    issues[1]["updated_at"] = iso(start - timedelta(days=30) + timedelta(minutes=1))
    github_forge.received.clear()
    sync_repository(repo.id)
    run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
    # since = cursor (issue #1, -1 min) - 5 min overlap: #1 and #3–#6 again, and #2 changed.
    assert run.items_seen == 6
    assert count(session, BacklogItem, BacklogItem.repository_id == repo.id) == 200


def test_unchanged_repository_costs_only_304s(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _window_forge(github_forge, datetime(2026, 3, 1))
    github_forge.repos[("org-a", "repo-x")]["pulls"] = [
        github_pull("org-a", "repo-x", 900, updated_at="2026-01-01T00:00:00Z")
    ]
    sync_repository(repo.id, full=True)
    sync_repository(repo.id)  # learns the ETags of the incremental URLs
    github_forge.received.clear()
    sync_repository(repo.id)
    assert github_forge.received, "the sync asked nothing"
    assert github_forge.non_304() == []


def test_304_without_a_cached_page_is_retried_once_then_refused(session, github_forge):
    _window_forge(github_forge, datetime(2026, 3, 1))
    http = GitHubClient(github_forge.url, None).http
    # A cache that claims nothing: a 304 must not be read as "no issues".
    page = http.get_page("/repos/org-a/repo-x/issues", {"per_page": "100"}, DbPageCache())
    assert len(page.items) == 100
    github_forge.fail("/repos/org-a/repo-x/issues", 304, times=1)
    github_forge.received.clear()
    page = http.get_page("/repos/org-a/repo-x/issues", {"per_page": "100"}, DbPageCache())
    assert len(page.items) == 100
    assert [(r.status, "If-None-Match" in r.headers) for r in github_forge.received] == [(304, False), (200, False)]
    github_forge.fail("/repos/org-a/repo-x/issues", 304, times=2)
    with pytest.raises(ForgeError, match="304 Not Modified without a cached page"):
        http.get_page("/repos/org-a/repo-x/issues", {"per_page": "100"}, DbPageCache())


def test_secondary_rate_limit_waits_for_retry_after(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _window_forge(github_forge, datetime(2026, 3, 1))
    github_forge.fail("/repos/org-a/repo-x/issues", 403, {"Retry-After": "60"},
                      {"message": "You have exceeded a secondary rate limit."})
    before = utcnow()
    run_id = sync_repository(repo.id, full=True)
    run = session.get(SyncRun, run_id)
    assert run.status is SyncRunStatus.waiting
    assert before + timedelta(seconds=59) <= run.resume_at <= utcnow() + timedelta(seconds=61)
    assert "secondary rate limit" in run.error
    # Resumed (by the scheduler or the cron pass), the same run completes.
    sync_repository(repo.id, run_id, True)
    assert session.get(SyncRun, run_id).status is SyncRunStatus.done
    assert session.get(SyncRun, run_id).attempts == 2


def test_primary_rate_limit_waits_until_the_reset_time(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _window_forge(github_forge, datetime(2026, 3, 1))
    reset = int(time.time()) + 1800
    github_forge.fail("/repos/org-a/repo-x/issues", 403,
                      {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
                      {"message": "API rate limit exceeded"})
    run = session.get(SyncRun, sync_repository(repo.id, full=True))
    assert run.status is SyncRunStatus.waiting
    assert run.resume_at == datetime.fromtimestamp(reset, tz=timezone.utc).replace(tzinfo=None)


def test_permission_error_flags_the_repository_and_is_not_retried(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _window_forge(github_forge, datetime(2026, 3, 1))
    github_forge.fail("/repos/org-a/repo-x/issues", 403, {},
                      {"message": "Resource not accessible by integration"})
    run = session.get(SyncRun, sync_repository(repo.id, full=True))
    assert run.status is SyncRunStatus.failed
    assert repo.sync_status is SyncStatus.forbidden
    assert "Resource not accessible by integration" in repo.sync_error
    assert run.resume_at is None


def test_pull_requests_disabled_still_syncs_issues(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _window_forge(github_forge, datetime(2026, 3, 1))
    github_forge.repos[("org-a", "repo-x")]["pulls_disabled"] = True
    run = session.get(SyncRun, sync_repository(repo.id, full=True))
    assert run.status is SyncRunStatus.done
    assert repo.pulls_disabled is True
    assert count(session, BacklogItem, BacklogItem.repository_id == repo.id) == 200


def test_sync_gives_up_after_the_bounded_number_of_attempts(app, session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _window_forge(github_forge, datetime(2026, 3, 1))
    github_forge.fail("/repos/org-a/repo-x/issues", 502, times=100)
    run_id = sync_repository(repo.id, full=True)
    for _ in range(app.config["SYNC_MAX_ATTEMPTS"] - 1):
        assert session.get(SyncRun, run_id).status is SyncRunStatus.waiting
        sync_repository(repo.id, run_id, True)
    run = session.get(SyncRun, run_id)
    assert run.status is SyncRunStatus.failed
    assert run.error.startswith(f"gave up after {app.config['SYNC_MAX_ATTEMPTS']} attempts: 502")
    assert repo.sync_status is SyncStatus.failed
