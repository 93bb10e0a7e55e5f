"""Sync and webhook jobs through RQ on real Redis, the cron schedule, the CLI."""
import time
from datetime import datetime, timezone

from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from jobs.cli import CRON_CONFIG
from jobs.sync import reconcile_repository, sync_due_repositories, sync_repository
from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.forges.models import Repository
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_repository
from tests.forges.fake_forge import github_issue
from tests.webhooks.helpers import payload, post_github


def test_webhook_is_queued_then_processed_by_a_worker(app, client, session, rq_redis):
    make_repository("Codertocat", "Hello-World")
    response = post_github(client, "issues", payload("github/webhooks/issues/opened.json"), "rq-1")
    assert response.status_code == 202
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "rq-1"))
    assert delivery.status is DeliveryStatus.pending
    queue = Queue("webhooks", connection=rq_redis)
    assert [job.func_name for job in queue.jobs] == ["jobs.webhooks.process_delivery"]
    with app.app_context():
        SimpleWorker([queue], connection=rq_redis).work(burst=True)
    session.refresh(delivery)
    assert delivery.status is DeliveryStatus.processed


def test_rate_limited_sync_is_scheduled_again_at_the_reset_time(app, session, rq_redis, github_forge):
    repo = make_repository("org-a", "repo-x")
    github_forge.repos[("org-a", "repo-x")] = {
        "id": 77, "default_branch": "main", "pulls": [],
        "issues": [github_issue("org-a", "repo-x", 1, updated_at="2026-01-01T00:00:00Z")],
    }
    reset = int(time.time()) + 1800
    github_forge.fail("/repos/org-a/repo-x/issues", 403,
                      {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    run_id = sync_repository(repo.id, full=True)
    registry = ScheduledJobRegistry("sync", connection=rq_redis)
    job_ids = registry.get_job_ids()
    assert len(job_ids) == 1
    scheduled_at = registry.get_scheduled_time(job_ids[0])
    assert scheduled_at == datetime.fromtimestamp(reset, tz=timezone.utc)
    job = Queue("sync", connection=rq_redis).fetch_job(job_ids[0])
    assert job.args == (repo.id, run_id, True)


def test_cron_schedule_loads_from_the_repository_config(rq_redis):
    scheduler = CronScheduler(connection=rq_redis)
    scheduler.load_config_from_file(CRON_CONFIG)
    jobs = {(job.name, job.queue_name, job.interval, job.cron) for job in scheduler.get_jobs()}
    assert jobs == {
        ("incremental-sync", "sync", 900, None),
        ("reconciliation", "sync", None, "17 3 * * *"),
        ("requeue-deliveries", "webhooks", 300, None),
        ("send-outbox", "notifications", 60, None),
        ("retry-waiting-deliveries", "webhooks", 900, None),
        ("cancel-unpaid-pledges", "money", None, "47 * * * *"),
        ("refund-expired-pledges", "money", None, "7 * * * *"),
        ("refund-not-planned", "money", None, "37 * * * *"),
        ("payouts", "money", 600, None),
        ("transfer-reconciliation", "money", None, "47 3 * * *"),
        ("claim-lapses", "default", None, "23 * * * *"),
        ("end-pools", "money", None, "53 * * * *"),
        ("refresh-reports", "default", 300, None),
        ("public-data-export", "default", None, "31 2 * * *"),
        ("forge-presence", "default", 300, None),
        ("return-expired-allotments", "money", None, "41 * * * *"),
        ("ledger-reconciliation", "money", None, "11 * * * *"),
    }


def test_periodic_sync_queues_every_repository_once(app, session, rq_redis):
    repos = session.scalar(select(func.count()).select_from(Repository))
    assert sync_due_repositories() == repos
    assert Queue("sync", connection=rq_redis).count == repos
    # A second pass while those runs are queued adds nothing.
    assert sync_due_repositories() == 0


def test_cli_sync_shows_progress_and_the_result(runner, session, github_forge):
    make_repository("org-a", "repo-x")
    github_forge.repos[("org-a", "repo-x")] = {
        "id": 77, "default_branch": "main", "pulls": [],
        "issues": [github_issue("org-a", "repo-x", n, updated_at=f"2026-01-{n:02d}T00:00:00Z") for n in range(1, 6)],
    }
    result = runner.invoke(args=["sync", "org-a/repo-x", "--full"])
    assert result.exit_code == 0, result.output
    assert "Syncing github.com/org-a/repo-x" in result.output
    assert result.output.strip().endswith("done: 2 pages (0 unchanged), 5 issues, 0 pull requests")
    unknown = runner.invoke(args=["sync", "nobody/nothing"])
    assert unknown.exit_code == 2 and "no repository 'nobody/nothing'" in unknown.output


def test_reconciliation_marks_a_deleted_merge_request_and_unsolves(client, session, gitlab_forge):
    from tests.webhooks.test_gitlab_webhooks import _gitlab_issue, _gitlab_mr

    repo = make_repository("health", "records", host="gitlab.example.org")
    forge_repo = {
        "id": 4242, "default_branch": "main",
        "issues": [_gitlab_issue(7, "2026-02-01T00:00:00.000Z")],
        "pulls": [_gitlab_mr(650, "2026-02-02T00:00:00.000Z", description="Closes #7"),
                  _gitlab_mr(651, "2026-02-03T00:00:00.000Z", state="opened")],
    }
    gitlab_forge.repos[("health", "records")] = forge_repo
    sync_repository(repo.id, full=True)
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
    assert item.solved_by.number == 650
    kept = forge_repo["pulls"][1]
    forge_repo["pulls"] = [kept]  # !650 deleted on GitLab, which sends no hook for it
    counts = reconcile_repository(repo.id)
    assert counts == {"items": 1, "deleted_items": 0, "pull_requests": 1, "deleted_pull_requests": 1}
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id, PullRequest.number == 650))
    assert pull.deleted_at is not None
    assert session.get(BacklogItem, item.id).solved_by_id is None
