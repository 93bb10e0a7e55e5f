"""Two workers processing two events of one issue (or pull request) at the
same moment keep the newer one, on two real PostgreSQL sessions (issue 11 §6).

Worker A applies the newer event and holds its transaction open; worker B
then processes the older event. B must wait for A (the lock on the forge
identity is taken before the staleness check) and then find its event stale.
Reading the row unlocked, B would pass the staleness check on the old row,
wait only at its UPDATE, and overwrite A's newer state once A commits.
"""
import json
import threading
import time

import pytest
import sqlalchemy as sa

from marketplace.timeutil import parse_forge_timestamp
from tests.races import race_database_app
from tests.webhooks.test_event_order import deliveries_for


@pytest.fixture(scope="module")
def race_app(database_url):
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_event_race") as app:
        yield app


def _store(bodies: dict) -> dict[str, int]:
    from marketplace.extensions import db
    from marketplace.webhooks.models import WebhookDelivery

    ids = {}
    for name, (event, body) in bodies.items():
        row = WebhookDelivery(source="github", delivery_id=f"race-{name}-{time.time_ns()}", event=event,
                              action=body["action"], body=json.dumps(body))
        db.session.add(row)
        db.session.flush()
        ids[name] = row.id
    db.session.commit()
    return ids


def _repository(tag: str):
    from marketplace.extensions import db
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.projects.models import MemberProject, RegistryStatus

    project = MemberProject(slug=f"race-{tag}", name=f"Race {tag}", registry_status=RegistryStatus.active)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="Codertocat",
                      name="Hello-World", path_key="codertocat/hello-world", forge_id=186853002,
                      url="https://github.com/Codertocat/Hello-World", default_branch="master")
    db.session.add_all([project, repo])
    db.session.commit()


def _blocked_sessions(app) -> int:
    from marketplace.extensions import db

    with app.app_context():
        return db.session.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))


def _race(app, newer_id: int, older_id: int) -> list:
    """A handles ``newer_id`` and waits with its transaction open until B, started
    on ``older_id``, is blocked on a lock; then A commits. Returns errors raised."""
    from jobs.webhooks import process_delivery
    from marketplace.extensions import db
    from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
    from marketplace.webhooks.service import handle

    a_handled, a_may_commit = threading.Event(), threading.Event()
    errors = []

    def worker_a():
        with app.app_context():
            try:
                delivery = db.session.get(WebhookDelivery, newer_id, with_for_update=True)
                delivery.status, delivery.outcome = handle(delivery)
                assert delivery.status is DeliveryStatus.processed, delivery.outcome
                a_handled.set()
                a_may_commit.wait(30)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
                a_handled.set()

    def worker_b():
        with app.app_context():
            try:
                process_delivery(older_id)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    a = threading.Thread(target=worker_a)
    a.start()
    assert a_handled.wait(30)
    b = threading.Thread(target=worker_b)
    b.start()
    for _ in range(400):  # until B waits on A's lock (advisory or row): then let A commit
        if _blocked_sessions(app) or not b.is_alive():
            break
        time.sleep(0.025)
    a_may_commit.set()
    a.join(30)
    b.join(30)
    return errors


@pytest.mark.postgres
def test_two_workers_on_two_events_of_one_issue_keep_the_newer_one(race_app):
    from jobs.webhooks import process_delivery
    from marketplace.backlog.service import find_item
    from marketplace.extensions import db

    with race_app.app_context():
        _repository("issue")
        bodies = deliveries_for(61, ["edited", "closed"])  # edited at 10:01, closed at 10:03
        ids = _store(bodies)
        process_delivery(ids["opened"])
    errors = _race(race_app, newer_id=ids["closed"], older_id=ids["edited"])
    assert errors == []
    with race_app.app_context():
        item = find_item("github.com", 700061)
        assert (item.state.value, item.title, item.forge_updated_at) == (
            "closed", "Issue 61 (edited)", parse_forge_timestamp("2020-01-01T10:03:00Z"))
        db.session.rollback()


@pytest.mark.postgres
def test_two_workers_on_two_events_of_one_pull_request_keep_the_newer_one(race_app):
    from marketplace.backlog.models import PullRequest, PullRequestState
    from marketplace.extensions import db

    with race_app.app_context():
        merged = deliveries_for(62, ["merged"])["merged"][1]
        older = json.loads(json.dumps(merged))
        older["action"] = "edited"
        older["pull_request"].update(state="open", merged=False, merged_at=None, closed_at=None,
                                     title="An older title", updated_at="2020-01-01T10:02:00Z")
        ids = _store({"merged": ("pull_request", merged), "older": ("pull_request", older)})
    errors = _race(race_app, newer_id=ids["merged"], older_id=ids["older"])
    assert errors == []
    with race_app.app_context():
        pull = db.session.scalar(sa.select(PullRequest).where(PullRequest.number == 1062))
        assert (pull.state, pull.title != "An older title") == (PullRequestState.merged, True)
        assert pull.forge_updated_at == parse_forge_timestamp("2020-01-01T10:03:00Z")
        db.session.rollback()
