"""Signed deliveries of the right event with the wrong shape never crash a
job: each forge handler checks its payload against a small schema first and
records a clear ``malformed`` outcome (issue 11 §6).

The fuzz test mutates the recorded payloads field by field (a number where an
object is expected, ``true`` as an id, an id beyond 64 bits, ``\\u0000`` in a
string, an empty object or list, null) and sends them signed.
"""
import copy
import random

import pytest
from sqlalchemy import select

from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from marketplace.webhooks.schemas import (
    GitHubInstallationEvent,
    GitHubIssuesEvent,
    GitHubPullRequestEvent,
    GitHubRepositoryEvent,
    GitLabIssueHook,
    GitLabMergeRequestHook,
    validate,
)
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_github, post_gitlab

RECORDED = [
    ("github", "issues", "github/webhooks/issues/opened.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/closed.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/edited.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/reopened.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/labeled.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/deleted.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/transferred.json", GitHubIssuesEvent),
    ("github", "issues", "github/webhooks/issues/opened.with-transfer.json", GitHubIssuesEvent),
    ("github", "pull_request", "github/webhooks/pull_request/closed.merged.json", GitHubPullRequestEvent),
    ("github", "pull_request", "github/webhooks/pull_request/opened.json", GitHubPullRequestEvent),
    ("github", "pull_request", "github/webhooks/pull_request/synchronize.json", GitHubPullRequestEvent),
    ("github", "repository", "github/webhooks/repository/renamed.json", GitHubRepositoryEvent),
    ("github", "repository", "github/webhooks/repository/transferred.json", GitHubRepositoryEvent),
    ("github", "installation", "github/webhooks/installation/created.json", GitHubInstallationEvent),
    ("github", "installation_repositories", "github/webhooks/installation_repositories/added.json",
     GitHubInstallationEvent),
    ("gitlab", "Issue Hook", "gitlab/webhooks/issue/open.json", GitLabIssueHook),
    ("gitlab", "Issue Hook", "gitlab/webhooks/issue/close.json", GitLabIssueHook),
    ("gitlab", "Merge Request Hook", "gitlab/webhooks/merge_request/merge.json", GitLabMergeRequestHook),
    ("gitlab", "Merge Request Hook", "gitlab/webhooks/merge_request/update.edited.json", GitLabMergeRequestHook),
]
MUTATIONS = [7, True, 2**64, 2**70, -1, "a\u0000b", "\ud800", {}, [], None, "x", 1.5]
FUZZ_CASES = 600


@pytest.fixture
def repositories(session):
    for owner, name, host in (("Codertocat", "Hello-World", "github.com"), ("codinasion", "codinasion-bot",
                              "github.com"), ("Octocoders", "Hello-World", "github.com"),
                              ("Codertocat", "Space", "github.com"), ("kanboard", "test-webhook", "gitlab.com"),
                              ("anbraten", "woodpecker-test", "gitlab.com")):
        make_repository(owner, name, host=host)


def _paths(obj, prefix=(), depth=3):
    """Every key path of ``obj`` down to ``depth`` levels (list elements as index 0)."""
    if depth == 0:
        return
    children = obj.items() if isinstance(obj, dict) else [(0, obj[0])] if isinstance(obj, list) and obj else []
    for key, value in children:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,), depth - 1)


def _set(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _post(client, source, event, body, delivery_id):
    if source == "github":
        return post_github(client, event, body, delivery_id)
    return post_gitlab(client, event, body, delivery_id)


def _outcome(session, delivery_id):
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))


@pytest.mark.parametrize("source,event,path,schema", RECORDED, ids=[r[2] for r in RECORDED])
def test_every_recorded_payload_fits_its_schema(source, event, path, schema):
    validate(schema, payload(path))


@pytest.mark.parametrize("mutate,reason", [
    (lambda b: b.update(issue=5), "issue: Input should be a valid dictionary or instance of GitHubIssue"),
    (lambda b: b.update(repository=[1]), "repository: Input should be a valid dictionary or instance of GitHubRepository"),
    (lambda b: b["issue"].update(id=True), "issue.id: Input should be a valid integer"),
    (lambda b: b["issue"].update(id=2**64), "issue.id: Input should be less than or equal to 9223372036854775807"),
    (lambda b: b["issue"].update(number=2**31), "issue.number: Input should be less than or equal to 2147483647"),
    (lambda b: b["issue"].update(title="Spelling\u0000error"), "issue.title: Value error, contains a NUL character"),
    (lambda b: b["repository"].update(id="186853002"), "repository.id: Input should be a valid integer"),
], ids=["issue-number", "repository-list", "true-id", "id-beyond-64-bits", "number-beyond-int",
        "nul-in-title", "id-as-string"])
def test_the_issue_examples_are_recorded_malformed_and_change_nothing(client, session, repositories, mutate,
                                                                      reason):
    body = payload("github/webhooks/issues/opened.json")
    mutate(body)
    assert post_github(client, "issues", body, "malformed-example").status_code == 202
    delivery = _outcome(session, "malformed-example")
    assert delivery.status is DeliveryStatus.malformed
    assert delivery.outcome == f"malformed issues payload: {reason}"
    assert delivery.repository_id is None  # the handler's work was rolled back
    from marketplace.backlog.service import find_item

    assert find_item("github.com", 444500041) is None


def test_a_malformed_delivery_is_not_processed_again(client, session, repositories):
    from jobs.webhooks import process_delivery

    body = payload("github/webhooks/issues/opened.json")
    body["issue"]["id"] = True
    post_github(client, "issues", body, "malformed-once")
    delivery = _outcome(session, "malformed-once")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.malformed, 1)
    assert process_delivery(delivery.id) == "malformed"
    assert delivery.attempts == 1


def test_fuzzed_recorded_payloads_never_crash_a_job(client, session, repositories):
    """FUZZ_CASES signed deliveries, each a recorded payload with one field
    replaced: every one ends processed, ignored or malformed (none failed)."""
    rng = random.Random(11)
    cases = [(recorded, path, mutation) for recorded in RECORDED
             for path in _paths(payload(recorded[2])) for mutation in MUTATIONS]
    failures, seen = [], {status: 0 for status in DeliveryStatus}
    for n, (recorded, path, mutation) in enumerate(rng.sample(cases, FUZZ_CASES)):
        source, event, fixture, _ = recorded
        body = payload(fixture)
        _set(body, path, copy.deepcopy(mutation))
        response = _post(client, source, event, body, f"fuzz-{n}")
        if response.status_code == 400:  # the intake refused it (e.g. a non-text action)
            continue
        delivery = _outcome(session, f"fuzz-{n}")
        seen[delivery.status] += 1
        if delivery.status not in (DeliveryStatus.processed, DeliveryStatus.ignored, DeliveryStatus.malformed):
            failures.append((fixture, path, repr(mutation)[:20], delivery.outcome))
    assert failures == []
    assert seen[DeliveryStatus.malformed] > 0 and seen[DeliveryStatus.processed] > 0
