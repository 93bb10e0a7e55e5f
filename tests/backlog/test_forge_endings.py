"""The backlog follows what really happened on the forge (issue 11, sections
1, 2, 4 and 5): close reasons, deletions, confidentiality, one state.

Driven by signed recorded webhooks (GitHub octokit examples, GitLab docs
example) and the local Stripe stand-in for refunds.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from babel import dates as babel_dates
from sqlalchemy import select

from marketplace.backlog.close_reasons import CloseReason
from marketplace.backlog.ending import decide_unknown_close, end_withheld
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.service import find_item
from marketplace.claims.models import Claim, ClaimState
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail, PayoutState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user
from tests.conftest import make_repository
from tests.payouts.helpers import AFTER_WINDOW, World, escrow
from tests.webhooks.helpers import payload, post_github, post_gitlab


@pytest.fixture
def world(session, client):
    return World(session, client)


@pytest.fixture
def stripe_api(app):
    """Refunds of card pledges go to Stripe: the local stand-in answers."""
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    yield server
    app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    server.stop()


@pytest.fixture
def mails(monkeypatch):
    """Every e-mail queued through marketplace.notifications.mail.queue_mail, as (to, subject, body)."""
    from marketplace.notifications import mail

    sent = []
    monkeypatch.setattr(mail, "queue_mail", lambda to, subject, body: sent.append((to, subject, body)))
    return sent


@pytest.fixture
def notices_sent(monkeypatch):
    """Every notice queued, as (subject, kind, object id)."""
    from marketplace.notifications import notices

    sent = []
    monkeypatch.setattr(notices, "_queue", lambda subject, kind, object_id, *figures: sent.append((subject, kind, object_id)))
    return sent


def _now_iso(offset_seconds: int = 0) -> str:
    return (utcnow() + timedelta(seconds=offset_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def close_github(world: World, item: BacklogItem, reason: str | None) -> None:
    """A signed ``issues.closed`` delivery (recorded payload) for ``item`` with ``state_reason``."""
    body = payload("github/webhooks/issues/closed.json")
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["issue"].update(number=item.number, id=item.forge_id, state="closed", state_reason=reason,
                         updated_at=_now_iso(), closed_at=_now_iso(), html_url=item.html_url)
    assert post_github(world.client, "issues", body).status_code == 202


# --- GitLab: the GitLab docs' Issue Hook example, on a project of the commons ------------

GITLAB_PROJECT_ID = 1


@pytest.fixture
def gitlab_repo(session):
    return make_repository("gitlabhq", "gitlab-test", host="gitlab.com")


def gitlab_issue_hook(iid: int, *, state: str = "opened", action: str = "open", updated: str | None = None,
                      confidential: bool = False, moved_to_id: int | None = None,
                      duplicated_to_id: int | None = None, visibility_level: int = 20) -> dict:
    data = payload("gitlab/webhooks/issue/open.docs-example.json")
    data["project"]["web_url"] = "https://gitlab.com/gitlabhq/gitlab-test"
    data["project"]["visibility_level"] = visibility_level
    data["object_attributes"].update(
        id=30_000 + iid, iid=iid, project_id=GITLAB_PROJECT_ID, title=f"GitLab issue {iid}", state=state,
        action=action, confidential=confidential, moved_to_id=moved_to_id, duplicated_to_id=duplicated_to_id,
        updated_at=updated or _now_iso(), closed_at=updated or _now_iso() if state == "closed" else None,
        url=f"https://gitlab.com/gitlabhq/gitlab-test/-/issues/{iid}")
    return data


def post_gitlab_issue(client, data: dict, event: str = "Issue Hook") -> None:
    assert post_gitlab(client, event, data).status_code == 202


def gitlab_item(iid: int) -> BacklogItem | None:
    return find_item("gitlab.com", 30_000 + iid)


# --- 1. Only finished work is "done" ----------------------------------------------------

@pytest.mark.parametrize("state, state_reason, deleted, decision, expected", [
    ("open", None, False, None, None),
    ("open", "reopened", False, None, None),
    ("closed", None, False, None, CloseReason.completed),  # closed before GitHub had reasons; GitLab plain close
    ("closed", "completed", False, None, CloseReason.completed),
    ("closed", "not_planned", False, None, CloseReason.not_planned),
    ("closed", "duplicate", False, None, CloseReason.duplicate),
    ("closed", "moved", False, None, CloseReason.moved),
    ("closed", "reopened", False, None, CloseReason.unknown),
    ("closed", "archived_by_policy", False, None, CloseReason.unknown),
    ("closed", "archived_by_policy", False, "completed", CloseReason.completed),
    ("closed", "archived_by_policy", False, "not_planned", CloseReason.not_planned),
    ("closed", "duplicate", False, "completed", CloseReason.duplicate),  # only an unknown close is decided
    ("open", None, True, None, CloseReason.deleted),
    ("closed", "completed", True, None, CloseReason.deleted),
])
def test_the_one_place_that_reads_a_close_reason(state, state_reason, deleted, decision, expected):
    from marketplace.backlog.close_reasons import pays, reason_of

    reason = reason_of(state, state_reason, deleted=deleted, decision=decision)
    assert reason is expected
    assert pays(reason) is (expected is CloseReason.completed)


def test_the_sql_rules_agree_with_the_python_rule_on_the_seeded_items_and_three_odd_ones(session):
    from sqlalchemy import func

    from marketplace.backlog.models import ItemState
    from marketplace.backlog.queries import not_done_condition, solved_condition

    unknown, decided, deleted = session.scalars(select(BacklogItem).where(
        BacklogItem.state == ItemState.open).order_by(BacklogItem.id).limit(3)).all()
    for item in (unknown, decided):
        item.state, item.state_reason = ItemState.closed, "archived_by_policy"
    decided.close_decision = "completed"
    deleted.deleted_at = utcnow()
    session.flush()
    items = session.scalars(select(BacklogItem)).all()
    solved = set(session.scalars(select(BacklogItem.id).where(solved_condition())))
    not_done = set(session.scalars(select(BacklogItem.id).where(not_done_condition())))
    assert solved == {i.id for i in items if i.solved}
    assert not_done == {i.id for i in items if i.closed_as_not_planned}
    assert (len(solved), len(not_done)) == (165, 22)  # the seed's 164 and 20, and the three above
    assert session.scalar(select(func.count(BacklogItem.id))) == len(items)


def test_github_duplicate_close_of_a_4000_item_proposes_nothing_offers_the_refund_and_refunds_after_the_window(
        world, stripe_api, mails):
    item = world.issue(301)
    pledge = world.fund(item, 4000)
    close_github(world, item, "duplicate")
    item = world.session.get(BacklogItem, item.id)
    assert item.close_reason is CloseReason.duplicate and not item.solved
    assert world.payouts_of(item) == []
    assert pledges.self_refund_refusal(world.session.get(Pledge, pledge.id)) is None  # funder refund allowed
    assert [subject for to, subject, _body in mails if to == "funder@example.org"] == [
        'Receipt: $40.00 received for "Issue 301"',  # issue 20: the receipt when the money was held
        "An item you funded was closed without the work"]
    assert pledges.refund_not_planned(utcnow() + timedelta(days=13)) == []  # within the window
    assert escrow(item.id) == 4000
    assert pledges.refund_not_planned(utcnow() + timedelta(days=15)) == [pledge.id]
    assert world.session.get(Pledge, pledge.id).refunded_minor == 4000
    assert escrow(item.id) == 0


@pytest.mark.parametrize("target", ["moved_to_id", "duplicated_to_id"])
def test_gitlab_close_with_a_target_on_a_3000_item_pays_nothing_and_escrow_stays_3000_until_refunded(
        world, gitlab_repo, stripe_api, target):
    post_gitlab_issue(world.client, gitlab_issue_hook(23, updated=_now_iso(-60)))
    item = gitlab_item(23)
    pledge = world.fund(item, 3000)
    post_gitlab_issue(world.client, gitlab_issue_hook(23, state="closed", action="close", **{target: 30_024}))
    item = world.session.get(BacklogItem, item.id)
    expected = CloseReason.moved if target == "moved_to_id" else CloseReason.duplicate
    assert (item.close_reason, item.close_target_forge_id) == (expected, 30_024)
    assert world.payouts_of(item) == []
    assert pledges.refund_not_planned(utcnow() + timedelta(days=13)) == []
    assert escrow(item.id) == 3000
    assert pledges.self_service_refund(pledge.id, actor="test")
    assert escrow(item.id) == 0


def test_a_plain_gitlab_close_is_completed_and_waits_for_the_maintainers_attribution(world, gitlab_repo):
    post_gitlab_issue(world.client, gitlab_issue_hook(26, updated=_now_iso(-60)))
    item = gitlab_item(26)
    world.fund(item, 2000)
    post_gitlab_issue(world.client, gitlab_issue_hook(26, state="closed", action="close"))
    assert world.session.get(BacklogItem, item.id).close_reason is CloseReason.completed
    [payout] = world.payouts_of(item)
    assert (payout.reason, payout.suggested_recipient_id, payout.state) == (
        "closed_completed", None, PayoutState.proposed)


def test_funders_may_move_a_pledge_to_where_the_forge_says_the_work_went_and_nothing_moves_by_itself(
        world, gitlab_repo, mails, app):
    post_gitlab_issue(world.client, gitlab_issue_hook(23, updated=_now_iso(-60)))
    post_gitlab_issue(world.client, gitlab_issue_hook(24, updated=_now_iso(-60)))
    item, target = gitlab_item(23), gitlab_item(24)
    pledge = world.fund(item, 3000)
    post_gitlab_issue(world.client, gitlab_issue_hook(23, state="closed", action="close", moved_to_id=30_024))
    assert any("The work continues in \"GitLab issue 24\"" in body for _to, _s, body in mails)
    assert (escrow(item.id), escrow(target.id)) == (3000, 0)  # the funder's choice: nothing moved yet
    assert f'href="/items/{target.id}">the work continues in' in world.client.get(f"/items/{item.id}").get_data(
        as_text=True)
    page = as_user(app, world.funder).get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "Move my pledge there instead ($30.00)" in page
    moved_to = pledges.move_to_target(pledge.id, funder_id=world.funder.id, actor="test")
    assert moved_to.id == target.id
    assert (escrow(item.id), escrow(target.id)) == (0, 3000)
    assert world.session.get(Pledge, pledge.id).item_id == target.id
    with pytest.raises(pledges.PledgeError):
        pledges.move_to_target(pledge.id, funder_id=world.funder.id, actor="test")  # once


def test_a_github_duplicate_offers_a_move_only_once_a_maintainer_names_where_the_work_went(world, mails):
    from marketplace.backlog.ending import name_work_target

    item, target = world.issue(303), world.issue(304)
    pledge = world.fund(item, 4000)
    close_github(world, item, "duplicate")
    assert pledges.move_refusal(world.session.get(Pledge, pledge.id)) == (
        "The forge does not say where this item's work went.")
    mails.clear()
    name_work_target(world.session.get(BacklogItem, item.id), target, actor="test")
    assert any("The work continues in \"Issue 304\"" in body for _to, _s, body in mails)
    pledges.move_to_target(pledge.id, funder_id=world.funder.id, actor="test")
    assert (escrow(item.id), escrow(target.id)) == (0, 4000)


def test_an_unknown_github_close_reason_never_pays_and_the_maintainer_decides(world, app):
    item = world.issue(302)
    world.fund(item, 2500)
    close_github(world, item, "archived_by_policy")
    item = world.session.get(BacklogItem, item.id)
    assert item.close_reason is CloseReason.unknown
    assert world.payouts_of(item) == []
    page = as_user(app, world.maintainer).get(f"/items/{item.id}").get_data(as_text=True)
    assert "Decide what this close meant" in page and "archived_by_policy" in page
    decide_unknown_close(item, "completed", actor="test")
    assert item.close_reason is CloseReason.completed
    [payout] = world.payouts_of(item)
    assert (payout.reason, payout.gross_minor) == ("closed_completed", 2500)


# --- 2. Deleted upstream means gone, with the money returned ----------------------------

def _delete_github(world: World, item: BacklogItem) -> None:
    body = payload("github/webhooks/issues/deleted.json")
    body["issue"].update(number=item.number, id=item.forge_id, html_url=item.html_url)
    assert post_github(world.client, "issues", body).status_code == 202


def test_issues_deleted_on_a_3000_item_with_an_approved_claim_cancels_it_refunds_3000_and_answers_410(
        world, stripe_api, mails, notices_sent):
    item = world.issue(311)
    pledge = world.fund(item, 3000)
    ama = world.implementor("ama@example.org", github_id=6311)
    claim = world.claim(item, ama)
    _delete_github(world, item)
    assert world.session.get(Claim, claim.id).state is ClaimState.cancelled
    assert ("claim", "cancelled", claim.id) in notices_sent
    pledge = world.session.get(Pledge, pledge.id)
    assert (pledge.state, pledge.refunded_minor) == (PledgeState.refunded, 3000)
    assert escrow(item.id) == 0
    told = [subject for to, subject, _b in mails if to == "funder@example.org" and not subject.startswith("Receipt:")]
    # Why (the item was deleted), and issue 20's receipt of the refund itself.
    assert sorted(told) == ["Refund: $30.00 sent back to you", "Your pledge is refunded"]
    deleted_at = world.session.get(BacklogItem, item.id).deleted_at
    page = world.client.get(f"/items/{item.id}")
    assert page.status_code == 410
    shown = babel_dates.format_date(deleted_at, "medium", locale="en")  # e.g. "Nov 30, 2026"
    assert f"This item was removed on the forge on {shown}." in page.get_data(as_text=True)
    api = world.client.get(f"/api/v1/items/{item.id}")
    assert api.status_code == 410 and api.get_json()["error"]["message"] == (
        f"This item was removed on the forge on {deleted_at.strftime('%Y-%m-%d')}.")
    # A later merged pull request saying "Fixes #311" proposes nothing.
    world.pull(411, "Fixes #311", author_id=6311, merged=True)
    assert world.payouts_of(item) == []
    assert world.session.get(BacklogItem, item.id).solved_by_id is None
    with pytest.raises(pledges.PledgeError):
        pledges.self_service_refund(pledge.id, actor="test")  # nothing left to take back
    assert pledges.pledging_closed(world.session.get(BacklogItem, item.id))  # no new pledge attaches


def test_deleting_an_item_cancels_its_proposed_payout_and_refunds_at_once(world, stripe_api):
    item = world.issue(312)
    pledge = world.fund(item, 5000)
    world.pull(412, "Fixes #312", author_id=7777, merged=True)
    [payout] = world.payouts_of(item)
    assert payout.state is PayoutState.proposed
    _delete_github(world, item)
    assert world.session.get(type(payout), payout.id).state is PayoutState.cancelled
    assert world.session.get(Pledge, pledge.id).refunded_minor == 5000
    assert escrow(item.id) == 0


def test_a_second_deleted_delivery_changes_nothing(world, stripe_api):
    item = world.issue(313)
    pledge = world.fund(item, 1200)
    _delete_github(world, item)
    _delete_github(world, item)
    assert world.session.get(Pledge, pledge.id).refunded_minor == 1200
    assert escrow(item.id) == 0


# --- 4. What the forge keeps private stays private -------------------------------------

def test_a_confidential_issue_hook_for_a_public_item_unpublishes_it_and_a_public_one_republishes_it(
        world, gitlab_repo):
    post_gitlab_issue(world.client, gitlab_issue_hook(23, updated=_now_iso(-120)))
    item = gitlab_item(23)
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200
    post_gitlab_issue(world.client, gitlab_issue_hook(23, action="update", confidential=True,
                                                      updated=_now_iso(-60)), "Confidential Issue Hook")
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404  # (a)
    assert world.client.get(f"/items/{item.id}").status_code == 404
    listed = world.client.get("/api/v1/items?state=all&q=GitLab+issue").get_json()
    assert item.id not in [row["id"] for row in listed["items"]]
    post_gitlab_issue(world.client, gitlab_issue_hook(23, action="update", confidential=False))
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200


@pytest.mark.parametrize("event", ["Confidential Issue Hook", "Issue Hook"])
def test_a_new_confidential_issue_never_becomes_a_visible_item(world, gitlab_repo, event):
    post_gitlab_issue(world.client, gitlab_issue_hook(25, confidential=True), event)  # (b)
    item = gitlab_item(25)
    assert item.hidden is True and item.private_reason == "confidential"
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    assert world.client.get("/api/v1/items?state=all&q=GitLab+issue").get_json()["total"] == 0


def test_rest_sync_of_issues_7_confidential_and_8_shows_only_8(session, client, gitlab_forge):
    from jobs.sync import sync_repository
    from tests.webhooks.test_gitlab_webhooks import _gitlab_issue

    repo = make_repository("health", "records", host="gitlab.example.org")
    confidential = dict(_gitlab_issue(7, "2026-02-01T00:00:00.000Z"), confidential=True)
    gitlab_forge.repos[("health", "records")] = {
        "id": 4242, "default_branch": "main", "pulls": [],
        "issues": [confidential, _gitlab_issue(8, "2026-02-02T00:00:00.000Z")],
    }
    sync_repository(repo.id, full=True)  # (c)
    visible = session.scalars(select(BacklogItem.number).where(
        BacklogItem.repository_id == repo.id, BacklogItem.hidden.is_(False))).all()
    assert visible == [8]


def test_issues_of_a_private_github_repository_are_never_published(world, github_forge):
    # Published again only when the API agrees (a late delivery may still say public).
    github_forge.repos[("Codertocat", "Hello-World")] = {"id": 118, "visibility": "public", "issues": [],
                                                          "pulls": []}
    body = payload("github/webhooks/issues/opened.json")
    body["repository"].update(private=True, visibility="private")
    body["issue"].update(number=321, id=700321)
    assert post_github(world.client, "issues", body).status_code == 202
    item = find_item("github.com", 700321)
    assert item.hidden is True and item.private_reason == "repository"
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    # Made public again (the recorded repository.publicized delivery): its items are published.
    assert post_github(world.client, "repository",
                       payload("github/webhooks/repository/publicized.json")).status_code == 202
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200
    # And private again (repository.privatized, which says private: true beside visibility "public").
    assert post_github(world.client, "repository",
                       payload("github/webhooks/repository/privatized.json")).status_code == 202
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404


@pytest.mark.parametrize("level", [0, 10])  # private, internal
def test_issues_of_a_private_or_internal_gitlab_project_are_never_published(world, gitlab_repo, level):
    post_gitlab_issue(world.client, gitlab_issue_hook(27, visibility_level=level))
    item = gitlab_item(27)
    assert (item.hidden, item.private_reason) == (True, "repository")
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404


def test_money_on_an_item_kept_confidential_past_the_window_goes_back_and_within_it_stays(
        world, gitlab_repo, stripe_api):
    post_gitlab_issue(world.client, gitlab_issue_hook(23, updated=_now_iso(-300)))
    item = gitlab_item(23)
    pledge = world.fund(item, 3000)
    ama = world.implementor("ama@example.org", github_id=6331)
    claim = world.claim(item, ama)
    post_gitlab_issue(world.client, gitlab_issue_hook(23, action="update", confidential=True,
                                                      updated=_now_iso(-200)), "Confidential Issue Hook")
    assert end_withheld(utcnow() + timedelta(days=13)) == []  # within the window: it may come back
    assert escrow(item.id) == 3000
    post_gitlab_issue(world.client, gitlab_issue_hook(23, action="update", updated=_now_iso(-100)))
    assert end_withheld(utcnow() + timedelta(days=15)) == []  # public again: nothing ends
    assert escrow(item.id) == 3000 and world.session.get(Claim, claim.id).state is ClaimState.approved
    post_gitlab_issue(world.client, gitlab_issue_hook(23, action="update", confidential=True),
                      "Confidential Issue Hook")
    assert end_withheld(utcnow() + timedelta(days=15)) == [item.id]
    assert world.session.get(Pledge, pledge.id).refunded_minor == 3000
    assert escrow(item.id) == 0
    assert world.session.get(Claim, claim.id).state is ClaimState.cancelled


# --- 5. One truth about an item's state ---------------------------------------------------

def test_an_item_is_solved_everywhere_from_the_moment_its_change_merges(world):
    item = world.issue(331)
    world.pull(431, "Fixes #331", author_id=7777, merged=True)
    item = world.session.get(BacklogItem, item.id)
    assert item.state.value == "open"  # the issue-closed delivery has not come yet
    data = world.client.get(f"/api/v1/items/{item.id}").get_json()
    assert (data["state"], data["solved"], data["forge_state"]) == ("solved", True, "open")

    def ids(state):
        return [row["id"] for row in world.client.get(
            f"/api/v1/items?state={state}&project=odk&q=Issue+331").get_json()["items"]]

    assert (ids("open"), ids("solved"), ids("closed")) == ([], [item.id], [])
    assert ">Solved<" in world.client.get(f"/items/{item.id}").get_data(as_text=True)
    assert ">Solved<" in world.client.get("/?state=solved&q=Issue+331").get_data(as_text=True)


def test_closing_as_not_planned_cancels_the_active_claims(world, notices_sent):
    item = world.issue(332)
    ama = world.implementor("ama@example.org", github_id=6332)
    kofi = world.implementor("kofi@example.org", github_id=6333)
    approved = world.claim(item, ama)
    from marketplace.claims import service as claims

    requested = claims.request_claim(item, kofi, plan="Also me.", estimate_days=3,
                                     deadline=utcnow().date() + timedelta(days=5))
    close_github(world, item, "not_planned")
    assert [world.session.get(Claim, c.id).state for c in (approved, requested)] == [ClaimState.cancelled] * 2
    assert {("claim", "cancelled", approved.id), ("claim", "cancelled", requested.id)} <= set(notices_sent)


def test_a_paid_claim_is_completed_with_its_pull_request_and_net_9000_and_offers_no_withdraw(world, app):
    item = world.issue(333)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=6334)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual, manual_details="IBAN X"))
    claim = world.claim(item, ama)
    world.pull(433, "Fixes #333", author_id=6334, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    payouts.record_manual_payout(payout.shares[0].id, reference="BANK-333", paid_on=utcnow().date(),
                                 admin=world.admin)
    claim = world.session.get(Claim, claim.id)
    assert claim.state is ClaimState.completed and claim.pull_request.number == 433
    page = as_user(app, ama).get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "Codertocat/Hello-World#433" in page
    assert "Paid to the implementor (net)" in page and "$90.00" in page
    assert "Withdraw my claim" not in page
    listing = as_user(app, world.maintainer).get(f"/projects/{world.project.slug}/claims").get_data(as_text=True)
    assert f"/claims/{claim.id}\"" not in listing


def test_a_merged_change_by_an_unverified_author_tells_the_claimant_and_suggests_them_first(
        world, app, notices_sent):
    item = world.issue(334)
    world.fund(item, 4000)
    ama = world.implementor("ama@example.org", github_id=6335)
    other = world.implementor("kofi@example.org", github_id=6336)
    from marketplace.claims import service as claims

    claims.request_claim(item, other, plan="Me too.", estimate_days=3,
                         deadline=utcnow().date() + timedelta(days=5))
    claim = world.claim(item, ama)
    world.pull(434, "Fixes #334", author_id=99_334, merged=True)  # no verified identity has this id
    assert ("claim", "unverified_author", claim.id) in notices_sent
    assert world.session.get(Claim, claim.id).state is ClaimState.approved  # it did not count
    page = as_user(app, ama).get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "has no forge account connected here" in page and "connect that account" in page
    [payout] = world.payouts_of(item)
    assert payout.suggested_recipient_id is None
    html = as_user(app, world.maintainer).get(f"/payouts/{payout.id}").get_data(as_text=True)
    people = html[html.index("People who claimed this item"):]
    assert people.index(">ama<") < people.index(">kofi<")
    assert f'value="{ama.id}"' in html
    # The maintainer pays her: her claim is completed, with the change that solved the item.
    world.approve(payout, [(ama.id, 1)])
    claim = world.session.get(Claim, claim.id)
    assert (claim.state, claim.pull_request.number) == (ClaimState.completed, 434)


def test_readme_walkthrough_deleted_cht_core_10720_answers_410_and_its_pledge_is_refunded(
        session, client, stripe_api):
    """The README's walkthrough: the seed's issue medic/cht-core#10720, a held
    card pledge, and the signed issues.deleted delivery built as the README builds it."""
    import json

    from marketplace.accounts.models import User
    from marketplace.money import Money
    from marketplace.pledges.models import Rail
    from tests.conftest import SEED

    item = session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
    funder = User(display_name="Walker", email_verified_at=utcnow())
    funder.set_email("walker@example.org")
    session.add(funder)
    session.flush()
    pledge = pledges.create(item, funder.id, Money(2500, "USD"), rail=Rail.card, actor="test")
    pledge.payment_intent_id = f"pi_walk_{pledge.id}"
    pledges.mark_received(pledge.id, Money(2500, "USD"), actor="test")
    issue = next(i for i in json.loads((SEED / "dpg-issues" / "medic__cht-core.json").read_text())
                 if i["number"] == 10720)
    body = {"action": "deleted", "issue": issue,
            "repository": {"full_name": "medic/cht-core", "name": "cht-core", "owner": {"login": "medic"}}}
    assert post_github(client, "issues", body, "walkthrough-1").status_code == 202
    assert client.get(f"/items/{item.id}").status_code == 410
    assert client.get(f"/api/v1/items/{item.id}").status_code == 410
    assert session.get(Pledge, pledge.id).state is PledgeState.refunded
    assert escrow(item.id) == 0


def test_reconciliation_ends_only_the_issue_github_answers_410_for(session, github_forge, stripe_api):
    from jobs.sync import reconcile_repository, sync_repository
    from tests.forges.fake_forge import github_issue

    repo = make_repository("org-a", "repo-x")
    forge_repo = {"id": 77, "default_branch": "main", "pulls": [],
                  "issues": [github_issue("org-a", "repo-x", n, updated_at=f"2026-01-0{n}T00:00:00Z")
                             for n in (1, 2, 3)]}
    github_forge.repos[("org-a", "repo-x")] = forge_repo
    sync_repository(repo.id, full=True)
    deleted, transferred = (session.scalar(select(BacklogItem).where(
        BacklogItem.repository_id == repo.id, BacklogItem.number == n)) for n in (1, 2))
    forge_repo["issues"] = forge_repo["issues"][2:]
    forge_repo["deleted_issues"] = [1]  # 1 answers 410 Gone; 2 answers 404 (moved away, or no access)
    counts = reconcile_repository(repo.id)
    assert counts["deleted_items"] == 1
    assert session.get(BacklogItem, deleted.id).deleted_at is not None
    assert session.get(BacklogItem, transferred.id).deleted_at is None


def test_a_gitlab_project_turned_private_unpublishes_its_items_on_the_next_sync(session, gitlab_forge):
    from jobs.sync import sync_repository
    from tests.webhooks.test_gitlab_webhooks import _gitlab_issue

    repo = make_repository("health", "records", host="gitlab.example.org")
    forge_repo = {"id": 4242, "default_branch": "main", "pulls": [], "visibility": "public",
                  "issues": [_gitlab_issue(9, "2026-02-01T00:00:00.000Z")]}
    gitlab_forge.repos[("health", "records")] = forge_repo
    sync_repository(repo.id, full=True)
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
    assert item.hidden is False
    forge_repo["visibility"] = "internal"
    sync_repository(repo.id, full=True)
    assert (session.get(BacklogItem, item.id).hidden, repo.visibility) == (True, "internal")


def test_reconciliation_ends_a_gitlab_issue_its_project_answers_404_for(session, gitlab_forge):
    from jobs.sync import reconcile_repository, sync_repository
    from tests.webhooks.test_gitlab_webhooks import _gitlab_issue

    repo = make_repository("health", "records", host="gitlab.example.org")
    forge_repo = {"id": 4242, "default_branch": "main", "pulls": [],
                  "issues": [_gitlab_issue(n, f"2026-02-0{n}T00:00:00.000Z") for n in (1, 2)]}
    gitlab_forge.repos[("health", "records")] = forge_repo
    sync_repository(repo.id, full=True)
    forge_repo["issues"] = forge_repo["issues"][1:]  # issue 1 deleted on GitLab
    assert reconcile_repository(repo.id)["deleted_items"] == 1
    gone = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id, BacklogItem.number == 1))
    assert gone.deleted_at is not None and gone.hidden is True
