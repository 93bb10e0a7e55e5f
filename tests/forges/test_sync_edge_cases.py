"""sync against the local fake forge."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from jobs.sync import reconcile_repository, sync_due_repositories, sync_repository
from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.forges.models import SyncRun, SyncRunStatus, SyncStatus
from marketplace.timeutil import utcnow
from tests.conftest import make_repository
from tests.forges.fake_forge import github_issue, github_pull


def _repo(forge, issues=None, pulls=None):
    forge.repos[("org-a", "repo-x")] = {
        "id": 77, "default_branch": "main",
        "issues": issues if issues is not None else [
            github_issue("org-a", "repo-x", n, updated_at=f"2026-01-{n:02d}T00:00:00Z") for n in range(1, 4)],
        "pulls": pulls or [],
    }
    return forge.repos[("org-a", "repo-x")]


def _latest_run(session, repo):
    return session.scalars(select(SyncRun).where(SyncRun.repository_id == repo.id).order_by(SyncRun.id.desc())).first()


def test_secondary_rate_limit_403_without_retry_after_is_not_a_permission_error(session, github_forge):
    """GitHub: a secondary-limit 403 may come without Retry-After; then wait at least a minute.
    Observed: Forbidden -> repository flagged 'forbidden' and excluded from every later sync."""
    repo = make_repository("org-a", "repo-x")
    _repo(github_forge)
    github_forge.fail("/repos/org-a/repo-x/issues", 403, {"X-RateLimit-Remaining": "4321"},
                      {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                                  "you try again.",
                       "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
    run = session.get(SyncRun, sync_repository(repo.id, full=True))
    assert (run.status, repo.sync_status) == (SyncRunStatus.waiting, SyncStatus.running), (run.status, run.error)


def test_an_answer_that_is_not_json_is_retried_later(session, github_forge):
    """A 200 whose body is not JSON (a proxy's maintenance page) is an outage: wait and retry."""
    repo = make_repository("org-a", "repo-x")
    _repo(github_forge)
    original = github_forge._answer

    def maintenance_page(path, query, headers):
        if path.endswith("/issues"):
            return 200, {}, "<html>maintenance</html>"
        return original(path, query, headers)

    github_forge._answer = maintenance_page
    import json as _json

    dumps = _json.dumps
    _json.dumps = lambda body, *a, **k: body if isinstance(body, str) else dumps(body, *a, **k)
    try:
        run = session.get(SyncRun, sync_repository(repo.id, full=True))
    finally:
        _json.dumps = dumps
    assert run.status is SyncRunStatus.waiting
    assert "not JSON" in run.error


def test_an_unexpected_error_ends_the_run_and_later_passes_sync_again(app, session, github_forge, monkeypatch,
                                                                     rq_redis):
    """A bug must not leave the run "running": that would block the repository for good."""
    from rq import Queue

    from marketplace.forges.github import GitHubClient

    repo = make_repository("org-a", "repo-x")
    _repo(github_forge)

    def broken(obj):
        raise RuntimeError("a bug")

    monkeypatch.setattr(GitHubClient, "parse_list_item", staticmethod(broken))
    with pytest.raises(RuntimeError, match="a bug"):
        sync_repository(repo.id, full=True)
    run = _latest_run(session, repo)
    assert run.status is SyncRunStatus.failed
    assert run.error == "unexpected error: RuntimeError: a bug"
    assert repo.sync_status is SyncStatus.failed
    sync_due_repositories()
    queued = [job.args[0] for job in Queue("sync", connection=rq_redis).jobs]
    assert repo.id in queued


def test_a_run_whose_worker_died_is_abandoned_by_the_next_pass(app, session, rq_redis):
    repo = make_repository("org-a", "repo-x")
    from marketplace.forges.sync import start_run

    run = start_run(repo, full=False)
    run.status = SyncRunStatus.running
    run.started_at = utcnow() - timedelta(hours=3)
    session.flush()
    sync_due_repositories()
    assert run.status is SyncRunStatus.failed
    assert run.error == "abandoned: its worker stopped before the run ended"
    assert session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.repository_id == repo.id)) == 2


def test_a_huge_issue_number_in_a_pull_request_body_does_not_stop_the_sync(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _repo(github_forge, pulls=[github_pull("org-a", "repo-x", 9, updated_at="2026-01-05T00:00:00Z",
                                           body="see #99999999999")])
    try:
        sync_repository(repo.id, full=True)
        raised = None
    except Exception as exc:  # DataError: integer out of range
        raised = type(exc).__name__
    session.rollback()
    run = _latest_run(session, repo)
    assert run.status is SyncRunStatus.done, (raised, run.status)


def test_github_pull_requests_are_never_marked_deleted_and_reappear(session, github_forge):
    """A pull request marked deleted by one reconciliation (the forge listed nothing once)
    stays deleted after the forge lists it again; its item stays unsolved."""
    repo = make_repository("org-a", "repo-x")
    pull = github_pull("org-a", "repo-x", 9, updated_at="2026-01-05T00:00:00Z", body="Fixes #1",
                       state="closed", merged_at="2026-01-05T00:00:00Z")
    forge_repo = _repo(github_forge, pulls=[pull])
    sync_repository(repo.id, full=True)
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id, BacklogItem.number == 1))
    assert item.solved_by.number == 9
    forge_repo["pulls"] = []  # one empty answer
    reconcile_repository(repo.id)
    forge_repo["pulls"] = [pull]  # listed again
    reconcile_repository(repo.id)
    sync_repository(repo.id, full=True)
    pr = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id, PullRequest.number == 9))
    assert pr.deleted_at is None
    assert session.get(BacklogItem, item.id).solved_by_id == pr.id


def test_running_twice_is_idempotent(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _repo(github_forge, pulls=[github_pull("org-a", "repo-x", 9, updated_at="2026-01-05T00:00:00Z",
                                           body="Fixes #1")])
    sync_repository(repo.id, full=True)
    sync_repository(repo.id, full=True)
    sync_repository(repo.id)
    assert session.scalar(select(func.count()).select_from(BacklogItem).where(
        BacklogItem.repository_id == repo.id)) == 3
    assert session.scalar(select(func.count()).select_from(PullRequest).where(
        PullRequest.repository_id == repo.id)) == 1


def test_retry_after_http_date_and_429(session, github_forge):
    repo = make_repository("org-a", "repo-x")
    _repo(github_forge)
    github_forge.fail("/repos/org-a/repo-x/issues", 429, {}, {"message": "slow"})
    run = session.get(SyncRun, sync_repository(repo.id, full=True))
    assert run.status is SyncRunStatus.waiting and run.resume_at > utcnow()


def test_an_interrupted_pull_request_pass_is_resumed_in_full(session, github_forge):
    """Pulls page 1 is processed (its ETag stored), page 2 hits a 502; the resumed run gets
    304 on page 1 and stops ('nothing older changed'): page 2 is never read."""
    repo = make_repository("org-a", "repo-x")
    pulls = [github_pull("org-a", "repo-x", n, updated_at=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
                         body=f"PR {n}") for n in range(1000, 1150)]
    _repo(github_forge, pulls=pulls)
    original = github_forge._answer
    failed = []

    def answer(path, query, headers):
        if path.endswith("/pulls") and query.get("page") == "2" and not failed:
            failed.append(1)
            return 502, {}, {"message": "bad gateway"}
        return original(path, query, headers)

    github_forge._answer = answer
    run_id = sync_repository(repo.id, full=True)
    assert session.get(SyncRun, run_id).status is SyncRunStatus.waiting
    sync_repository(repo.id, run_id, True)  # resumed by the scheduler
    assert session.get(SyncRun, run_id).status is SyncRunStatus.done
    stored = session.scalar(select(func.count()).select_from(PullRequest).where(PullRequest.repository_id == repo.id))
    assert stored == 150


def test_an_interrupted_pull_request_pass_still_links_the_merged_one(session, github_forge):
    """Same as above, realistic: pull requests also appear in the issues list. PR #1000 (on
    pulls page 2) is merged with 'Fixes #1'; after the resumed run, item #1 is not solved."""
    repo = make_repository("org-a", "repo-x")
    stamp = lambda n: f"2026-01-01T00:{(n - 1000) // 60:02d}:{(n - 1000) % 60:02d}Z"  # noqa: E731
    merged = "2026-01-01T00:00:00Z"
    pulls = [github_pull("org-a", "repo-x", n, updated_at=stamp(n), body="Fixes #1" if n == 1000 else "x",
                         state="closed" if n == 1000 else "open", merged_at=merged if n == 1000 else None)
             for n in range(1000, 1150)]
    issues = [github_issue("org-a", "repo-x", 1, updated_at="2025-12-01T00:00:00Z")] + [
        github_issue("org-a", "repo-x", n, updated_at=stamp(n), pull=True, body=p["body"], state=p["state"],
                     merged_at=p["merged_at"]) for n, p in zip(range(1000, 1150), pulls, strict=True)]
    _repo(github_forge, issues=issues, pulls=pulls)
    original = github_forge._answer
    failed = []

    def answer(path, query, headers):
        if path.endswith("/pulls") and query.get("page") == "2" and not failed:
            failed.append(1)
            return 502, {}, {"message": "bad gateway"}
        return original(path, query, headers)

    github_forge._answer = answer
    run_id = sync_repository(repo.id, full=True)
    sync_repository(repo.id, run_id, True)
    assert session.get(SyncRun, run_id).status is SyncRunStatus.done
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id, BacklogItem.number == 1))
    pr = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id, PullRequest.number == 1000))
    assert (pr.state.value, pr.base_branch, item.solved_by_id) == ("merged", "main", pr.id)


@pytest.mark.parametrize("reset", ["1e30", "inf"])
def test_absurd_rate_limit_reset_header_is_a_forge_error(reset):
    import httpx

    from marketplace.forges.http import ForgeError, raise_for_status

    response = httpx.Response(403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
                              json={"message": "API rate limit exceeded"},
                              request=httpx.Request("GET", "https://api.github.com/x"))
    with pytest.raises(ForgeError):
        raise_for_status(response)
