"""Forge events in any order: every pair of an issue's lifecycle events
(opened, edited, closed, reopened, deleted, transferred, a merged pull request
that says "Fixes #N") delivered as signed recorded GitHub payloads in both
orders ends in the same state — the state of the natural order (issue 11 §6).

The two orders run on two issues of the same repository (numbers 11 and 12),
so each sees the other's order only through what both share.
"""
import copy
import itertools

import pytest
from sqlalchemy import func, or_, select

from marketplace.backlog.models import BacklogItem, ItemLink, ItemState
from marketplace.backlog.service import find_item
from marketplace.payouts.models import Payout, PayoutState
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_repository
from tests.forges.fake_forge import github_issue
from tests.payouts.helpers import World, escrow
from tests.webhooks.helpers import payload, post_github

EVENTS = ["opened", "edited", "closed", "reopened", "deleted", "transferred", "merged"]
# The natural time of each event (GitHub's 1-second timestamps). The merge of a
# "Fixes #N" pull request closes the issue at the same second on the forge.
AT = {"opened": "2020-01-01T10:00:00Z", "edited": "2020-01-01T10:01:00Z", "merged": "2020-01-01T10:03:00Z",
      "closed": "2020-01-01T10:03:00Z", "reopened": "2020-01-01T10:04:00Z",
      "transferred": "2020-01-01T10:05:00Z", "deleted": "2020-01-01T10:06:00Z"}
NATURAL = {name: i for i, name in enumerate(["opened", "edited", "merged", "closed", "reopened", "transferred",
                                             "deleted"])}
OTHER_REPO_ID = 186853999


def _issue_object(owner_repo: str, forge_id: int, number: int, state: dict, updated_at: str) -> dict:
    issue = payload("github/webhooks/issues/opened.json")["issue"]
    issue.update(id=forge_id, number=number, title=state["title"], state=state["state"],
                 state_reason=state["state_reason"], closed_at=state["closed_at"], updated_at=updated_at,
                 created_at=AT["opened"], html_url=f"https://github.com/{owner_repo}/issues/{number}",
                 repository_url=f"https://api.github.com/repos/{owner_repo}")
    return issue


def _repository_object(owner_repo: str) -> dict:
    repository = payload("github/webhooks/issues/opened.json")["repository"]
    if owner_repo != "Codertocat/Hello-World":
        repository.update(id=OTHER_REPO_ID, name=owner_repo.split("/")[1], full_name=owner_repo)
    return repository


def deliveries_for(number: int, names: list[str]) -> dict[str, tuple[str, dict]]:
    """The signed deliveries (event, body) of issue ``number`` for the events
    ``names`` (plus "opened" as the start when absent), each carrying the
    issue as it was at that moment of the natural history."""
    state = {"title": f"Issue {number}", "state": "open", "state_reason": None, "closed_at": None}
    identity = ("Codertocat/Hello-World", 700000 + number, number)
    bodies = {}
    for name in sorted(set(names) | {"opened"}, key=NATURAL.get):
        at = AT[name]
        if name == "edited":
            state["title"] = f"Issue {number} (edited)"
        elif name in ("closed", "merged"):
            state.update(state="closed", state_reason="completed", closed_at=at)
        elif name == "reopened":
            state.update(state="open", state_reason="reopened", closed_at=None)
        if name == "merged":
            data = payload("github/webhooks/pull_request/closed.unmerged.json")
            data["pull_request"].update(number=1000 + number, id=880000 + number, body=f"Fixes #{number}",
                                        merged=True, merged_at=at, closed_at=at, updated_at=at, state="closed",
                                        html_url=f"https://github.com/Codertocat/Hello-World/pull/{1000 + number}")
            data["pull_request"]["base"]["ref"] = "master"
            bodies[name] = ("pull_request", data)
            continue
        body = payload(f"github/webhooks/issues/{'opened' if name in ('edited', 'closed') else name}.json")
        body["action"] = name
        body["issue"] = _issue_object(identity[0], identity[1], identity[2], state, at)
        body["repository"] = _repository_object(identity[0])
        if name == "transferred":
            new_identity = ("Codertocat/Hello-World-2", 800000 + number, 500 + number)
            body["changes"]["new_issue"] = _issue_object(*new_identity, state, at)
            body["changes"]["new_repository"] = _repository_object(new_identity[0])
            identity = new_identity
        bodies[name] = ("issues", body)
    return bodies


def deliver(client, bodies: dict, order: list[str]) -> None:
    for name in order:
        event, body = bodies[name]
        assert post_github(client, event, copy.deepcopy(body)).status_code == 202


def final_state(session, number: int) -> dict:
    """What the commons holds about issue ``number`` in the end, with the number written as N."""
    item = find_item("github.com", 700000 + number)
    rows = session.scalar(select(func.count()).select_from(BacklogItem).where(
        or_(BacklogItem.forge_id.in_([700000 + number, 800000 + number]),
            BacklogItem.number.in_([number, 500 + number]))))
    if item is None:
        return {"items": rows}
    payouts = session.scalars(select(Payout).where(Payout.item_id == item.id)).all()
    return {
        "items": rows,
        "state": (item.state.value, item.state_reason),
        "title": item.title.replace(str(number), "N"),
        "hidden": item.hidden,
        "deleted": item.deleted_at is not None,
        "where": (item.repository.full_name, item.number - number),
        "solved": item.solved_by is not None,
        "live payouts": sorted((p.state.value, p.reason, p.gross_minor) for p in payouts
                               if p.state is not PayoutState.cancelled),
        "escrow": escrow(item.id),
    }


@pytest.fixture
def world(session, client):
    world = World(session, client)
    make_repository("Codertocat", "Hello-World-2", forge_id=OTHER_REPO_ID, default_branch="master")
    return world


def _play(world, number: int, pair: tuple[str, str], order: list[str]) -> dict:
    bodies = deliveries_for(number, list(pair))
    if "opened" not in pair:
        # The issue exists and is funded before the pair arrives.
        deliver(world.client, bodies, ["opened"])
        world.fund(find_item("github.com", 700000 + number), 5000)
    deliver(world.client, bodies, order)
    failed = world.session.scalars(select(WebhookDelivery.outcome).where(
        WebhookDelivery.status.not_in([DeliveryStatus.processed, DeliveryStatus.ignored]))).all()
    assert failed == []
    return final_state(world.session, number)


@pytest.mark.parametrize("pair", list(itertools.combinations(EVENTS, 2)), ids="+".join)
def test_every_pair_of_lifecycle_events_ends_the_same_in_both_orders(world, pair):
    natural = sorted(pair, key=NATURAL.get)
    in_order = _play(world, 11, pair, natural)
    reversed_order = _play(world, 12, pair, list(reversed(natural)))
    assert reversed_order == in_order
    assert in_order["items"] == 1


def test_reopened_before_closed_on_a_funded_merged_item_cancels_its_payout_as_in_order(world, session):
    """The issue's example: 50.00 USD in escrow, "Fixes #N" merged (payout
    proposed), then closed and reopened — delivered reopened first."""
    results = {}
    for number, order in ((21, ["closed", "reopened"]), (22, ["reopened", "closed"])):
        bodies = deliveries_for(number, ["merged", "closed", "reopened"])
        deliver(world.client, bodies, ["opened"])
        item = find_item("github.com", 700000 + number)
        world.fund(item, 5000)
        deliver(world.client, bodies, ["merged"])
        assert [(p.state, p.gross_minor) for p in world.payouts_of(item)] == [(PayoutState.proposed, 5000)]
        deliver(world.client, bodies, order)
        results[number] = ([p.state for p in world.payouts_of(item)], item.state, escrow(item.id))
    assert results[21] == results[22] == ([PayoutState.cancelled], ItemState.open, 5000)


def test_an_open_event_older_than_the_merge_cancels_nothing(world, session):
    """An edit made before the merge but delivered after it says "open" from
    before the work was done: the proposal stays."""
    bodies = deliveries_for(31, ["edited", "merged"])
    deliver(world.client, bodies, ["opened"])
    item = find_item("github.com", 700031)
    world.fund(item, 5000)
    deliver(world.client, bodies, ["merged", "edited"])
    assert item.title == "Issue 31 (edited)"
    assert [(p.state, p.reason) for p in world.payouts_of(item)] == [(PayoutState.proposed, "merged")]


def test_a_merged_pull_request_delivered_before_its_issue_solves_it_when_the_issue_arrives(world, session):
    bodies = deliveries_for(41, ["merged"])
    deliver(world.client, bodies, ["merged"])
    link = session.scalar(select(ItemLink).where(ItemLink.target_number == 41))
    assert (link.target, link.item_id) == ("Codertocat/Hello-World#41", None)
    deliver(world.client, bodies, ["opened"])
    item = find_item("github.com", 700041)
    assert link.item_id == item.id
    assert item.solved_by.number == 1041


@pytest.mark.parametrize("truth", ["open", "closed"])
@pytest.mark.parametrize("order", [["closed", "reopened"], ["reopened", "closed"]], ids="-then-".join)
def test_close_and_reopen_in_the_same_second_end_as_the_forge_says(world, session, github_forge, truth, order):
    """GitHub's updated_at has 1-second resolution: a close and a reopen can
    carry the same one. Arrival order must not decide; the forge's API does."""
    second = "2020-01-01T10:03:00Z"
    bodies = deliveries_for(51, ["closed", "reopened"])
    for name in ("closed", "reopened"):
        bodies[name][1]["issue"]["updated_at"] = second
    github_forge.repos[("Codertocat", "Hello-World")] = {"id": 186853002, "default_branch": "master", "pulls": [],
                                                         "issues": [github_issue(
                                                             "Codertocat", "Hello-World", 51, forge_id=700051,
                                                             updated_at=second, state=truth, title="Issue 51",
                                                             state_reason="completed" if truth == "closed"
                                                             else "reopened")]}
    deliver(world.client, bodies, ["opened"] + order)
    item = find_item("github.com", 700051)
    assert item.state.value == truth
    issue_reads = [r for r in github_forge.received if r.path == "/repos/Codertocat/Hello-World/issues/51"]
    assert len(issue_reads) == 1  # only the second event, the tie, asked the forge


@pytest.mark.parametrize("order", [["close", "reopen"], ["reopen", "close"]], ids="-then-".join)
def test_gitlab_close_and_reopen_in_the_same_second_end_as_the_forge_says(client, session, gitlab_forge, order):
    """The same tie on GitLab (hook timestamps have 1-second resolution): the
    recorded Issue Hook close and reopen deliveries with one updated_at."""
    from tests.webhooks.helpers import post_gitlab

    repo = make_repository("kanboard", "test-webhook", host="gitlab.example.org", forge_id=320820,
                           default_branch="master")
    second = "2016-02-27 01:30:00 UTC"
    bodies = {}
    for action in ("open", "close", "reopen"):
        body = payload(f"gitlab/webhooks/issue/{action}.json")
        body["project"]["web_url"] = "https://gitlab.example.org/kanboard/test-webhook"
        body["object_attributes"].update(id=1268888, iid=5, project_id=320820,
                                         updated_at="2016-02-27 01:10:01 UTC" if action == "open" else second,
                                         url="https://gitlab.example.org/kanboard/test-webhook/issues/5")
        bodies[action] = body
    truth = dict(bodies["reopen"]["object_attributes"], state="opened", web_url=bodies["reopen"]["object_attributes"]
                 ["url"])
    gitlab_forge.repos[("kanboard", "test-webhook")] = {"id": 320820, "issues": [truth], "pulls": []}
    for action in ["open"] + order:
        assert post_gitlab(client, "Issue Hook", bodies[action]).status_code == 202
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id, BacklogItem.number == 5))
    assert item.state is ItemState.open
    assert [r.path for r in gitlab_forge.received] == ["/api/v4/projects/320820/issues/5"]
