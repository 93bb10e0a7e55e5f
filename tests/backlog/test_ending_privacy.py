"""Attacks on the forge work of issue 11: ways to publish what the forge keeps
private, or to keep money where it should not be. Each test is one attack,
driven by signed recorded webhooks (the helpers of ``test_forge_endings``),
the fake forge APIs and the local Stripe stand-in. Most broke the code
before the fix committed with them; the rest held and stay as guards
(deletion while a payout is approved, close reasons spelt otherwise, deleted
then transferred, the confidential flip-flops in every order, a move to a
confidential target, a privatized repository's money, a hook of a project we
never saw)."""
from __future__ import annotations

from datetime import timedelta
from itertools import permutations

import pytest
from sqlalchemy import select

from jobs.sync import reconcile_repository, sync_repository
from marketplace.accounts.models import User
from marketplace.backlog.close_reasons import CloseReason
from marketplace.backlog.ending import decide_unknown_close, end_withheld
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.service import find_item
from marketplace.claims.models import Claim, ClaimState
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail, PayoutState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.accounts.helpers import as_user
from tests.backlog.test_forge_endings import (  # noqa: F401 (fixtures)
    _now_iso,
    close_github,
    gitlab_issue_hook,
    gitlab_item,
    gitlab_repo,
    mails,
    post_gitlab_issue,
    stripe_api,
    world,
)
from tests.conftest import make_repository
from tests.forges.fake_forge import FakeForge
from tests.payouts.helpers import AFTER_WINDOW, escrow
from tests.webhooks.helpers import payload, post_github, post_gitlab
from tests.webhooks.test_gitlab_webhooks import _gitlab_issue


def last_delivery(session) -> tuple:
    """(status, outcome) of the latest webhook delivery."""
    row = session.scalar(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(1))
    return row.status, row.outcome


# --- a GitLab close that names a confidential issue as where the work went --------------

def test_a_move_to_a_confidential_issue_names_no_title_to_funders_and_moves_no_pledge(
        world, gitlab_repo, mails, app):
    post_gitlab_issue(world.client, gitlab_issue_hook(23, updated=_now_iso(-60)))
    post_gitlab_issue(world.client, gitlab_issue_hook(24, confidential=True, updated=_now_iso(-60)),
                      "Confidential Issue Hook")
    item, target = gitlab_item(23), gitlab_item(24)
    assert target.hidden is True
    pledge = world.fund(item, 3000)
    post_gitlab_issue(world.client, gitlab_issue_hook(23, state="closed", action="close", moved_to_id=30_024))
    bodies = [body for _to, subject, body in mails if not subject.startswith("Receipt:")]  # issue 20's receipt
    assert len(bodies) == 1
    assert "GitLab issue 24" not in bodies[0]
    assert "GitLab issue 23" in bodies[0]
    assert "GitLab issue 24" not in world.client.get(f"/items/{item.id}").get_data(as_text=True)
    page = as_user(app, world.funder).get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "GitLab issue 24" not in page and "Move my pledge there instead" not in page
    assert pledges.move_refusal(world.session.get(Pledge, pledge.id)) == (
        "The item the work went to takes no pledges.")
    with pytest.raises(pledges.PledgeError):
        pledges.move_to_target(pledge.id, funder_id=world.funder.id, actor="test")
    assert (escrow(item.id), escrow(target.id)) == (3000, 0)


# --- the transparency page and an item made private after its payout ------------------

def test_the_transparency_page_names_no_item_the_forge_made_private_after_its_payout(world, gitlab_repo, app):
    post_gitlab_issue(world.client, gitlab_issue_hook(31, updated=_now_iso(-300)))
    item = gitlab_item(31)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=6334)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual, manual_details="IBAN X"))
    post_gitlab_issue(world.client, gitlab_issue_hook(31, state="closed", action="close", updated=_now_iso(-200)))
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert "GitLab issue 31" in world.client.get("/transparency").get_data(as_text=True)
    post_gitlab_issue(world.client, gitlab_issue_hook(31, state="closed", action="update", confidential=True,
                                                      updated=_now_iso(-100)), "Confidential Issue Hook")
    page = world.client.get("/transparency").get_data(as_text=True)
    assert "GitLab issue 31" not in page
    assert "$100.00" in page and "$10.00" in page and "$90.00" in page  # the money stays public


def test_the_transparency_page_names_no_item_deleted_on_the_forge_after_its_payout(world, app):
    item = world.issue(341)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=6341)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual, manual_details="IBAN X"))
    world.pull(441, "Fixes #341", author_id=6341, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    body = payload("github/webhooks/issues/opened.json")
    body["action"] = "deleted"
    body["issue"].update(number=341, id=700341, title="Issue 341",
                         html_url="https://github.com/Codertocat/Hello-World/issues/341")
    assert post_github(world.client, "issues", body).status_code == 202
    assert world.session.get(BacklogItem, item.id).deleted_at is not None
    assert "Issue 341" not in world.client.get("/transparency").get_data(as_text=True)


# --- a late hook saying "public" for a project the forge made private -----------------

@pytest.fixture
def gitlab_com(app):
    """A fake GitLab API answering for gitlab.com, where the docs example's project lives."""
    forge = FakeForge("gitlab").start()
    previous = app.config.get("GITLAB_API_URLS")
    app.config["GITLAB_API_URLS"] = f"gitlab.com={forge.url}"
    yield forge
    app.config["GITLAB_API_URLS"] = previous
    forge.stop()


def test_a_late_gitlab_hook_from_before_the_project_went_private_publishes_nothing(
        world, gitlab_repo, gitlab_com):
    post_gitlab_issue(world.client, gitlab_issue_hook(40, updated=_now_iso(-300)))
    item = gitlab_item(40)
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200
    # The project is made private; the next hook says so.
    post_gitlab_issue(world.client, gitlab_issue_hook(41, updated=_now_iso(-60), visibility_level=0))
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    forge_project = {"id": world.session.get(type(gitlab_repo), gitlab_repo.id).forge_id, "visibility": "private",
                     "issues": [], "pulls": []}
    gitlab_com.repos[("gitlabhq", "gitlab-test")] = forge_project
    # A delivery from before that (redelivered, or late) still says public; the API says private.
    post_gitlab_issue(world.client, gitlab_issue_hook(40, action="update", updated=_now_iso(-200)))
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    assert world.client.get(f"/api/v1/items/{gitlab_item(41).id}").status_code == 404
    assert last_delivery(world.session) == (DeliveryStatus.processed, f"item {item.id} updated")
    # The project really is public again: the next hook saying so publishes its items.
    forge_project["visibility"] = "public"
    post_gitlab_issue(world.client, gitlab_issue_hook(41, action="update", updated=_now_iso(-30)))
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200
    assert world.client.get(f"/api/v1/items/{gitlab_item(41).id}").status_code == 200


def test_a_hook_saying_public_for_a_project_the_api_no_longer_shows_us_publishes_nothing(
        world, gitlab_repo, gitlab_com):
    post_gitlab_issue(world.client, gitlab_issue_hook(42, updated=_now_iso(-60), visibility_level=10))
    item = gitlab_item(42)
    assert (item.hidden, item.private_reason) == (True, "repository")
    # gitlab_com holds no such project: 404 for our token.
    post_gitlab_issue(world.client, gitlab_issue_hook(42, action="update", updated=_now_iso(-30)))
    item = world.session.get(BacklogItem, item.id)
    assert (item.hidden, item.private_reason) == (True, "repository")
    assert last_delivery(world.session) == (DeliveryStatus.processed, f"item {item.id} updated")
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404


# --- hostile shapes of the fields that decide what is published ------------------------

@pytest.mark.parametrize("flag", ["true", 1, {"value": True}, [True]])
def test_a_gitlab_issue_whose_confidential_flag_is_not_a_boolean_is_malformed_and_never_published(
        world, gitlab_repo, flag):
    data = gitlab_issue_hook(50)
    data["object_attributes"]["confidential"] = flag
    post_gitlab_issue(world.client, data, "Confidential Issue Hook")
    status, outcome = last_delivery(world.session)
    assert status is DeliveryStatus.malformed
    assert outcome.startswith("malformed Confidential Issue Hook payload: object_attributes.confidential:")
    assert gitlab_item(50) is None


def test_a_confidential_issue_hook_without_the_flag_is_still_a_confidential_issue(world, gitlab_repo):
    data = gitlab_issue_hook(51)
    del data["object_attributes"]["confidential"]
    post_gitlab_issue(world.client, data, "Confidential Issue Hook")
    item = gitlab_item(51)
    assert (item.hidden, item.private_reason) == (True, "confidential")
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404


@pytest.mark.parametrize("level", ["0", 0.0, True, 5, 2**70, None])
def test_a_gitlab_project_visibility_level_that_is_not_0_10_or_20_is_malformed(world, gitlab_repo, level):
    post_gitlab_issue(world.client, gitlab_issue_hook(52, updated=_now_iso(-60), visibility_level=0))
    item = gitlab_item(52)
    data = gitlab_issue_hook(52, action="update", updated=_now_iso(-30))
    data["project"]["visibility_level"] = level
    post_gitlab_issue(world.client, data)
    status, outcome = last_delivery(world.session)
    if level is None:  # not said: the stored visibility stands
        assert (status, outcome) == (DeliveryStatus.processed, f"item {item.id} updated")
    else:
        assert status is DeliveryStatus.malformed and "project.visibility_level" in outcome
    item = world.session.get(BacklogItem, item.id)
    assert (item.hidden, item.private_reason, gitlab_repo.visibility) == (True, "repository", "private")


@pytest.mark.parametrize("moved", [True, "30024", 2**64, -3])
def test_a_gitlab_moved_to_id_that_is_not_an_id_is_malformed(world, gitlab_repo, moved):
    post_gitlab_issue(world.client, gitlab_issue_hook(53, updated=_now_iso(-60)))
    item = gitlab_item(53)
    pledge = world.fund(item, 3000)
    data = gitlab_issue_hook(53, state="closed", action="close")
    data["object_attributes"]["moved_to_id"] = moved
    post_gitlab_issue(world.client, data)
    status, outcome = last_delivery(world.session)
    assert status is DeliveryStatus.malformed and "object_attributes.moved_to_id" in outcome
    item = world.session.get(BacklogItem, item.id)
    assert (item.state.value, item.close_target_forge_id) == ("open", None)
    assert world.payouts_of(item) == [] and escrow(item.id) == 3000
    assert world.session.get(Pledge, pledge.id).held_minor == 3000


@pytest.mark.parametrize("private", ["false", 0, {}, "yes"])
def test_a_github_repository_whose_private_flag_is_not_a_boolean_is_malformed(world, private):
    body = payload("github/webhooks/issues/opened.json")
    body["repository"]["private"] = private
    body["issue"].update(number=360, id=700360)
    assert post_github(world.client, "issues", body).status_code == 202
    status, outcome = last_delivery(world.session)
    assert status is DeliveryStatus.malformed and outcome.startswith(
        "malformed issues payload: repository.private:")
    assert find_item("github.com", 700360) is None
    privatized = payload("github/webhooks/repository/privatized.json")
    privatized["repository"]["private"] = private
    assert post_github(world.client, "repository", privatized).status_code == 202
    assert last_delivery(world.session)[0] is DeliveryStatus.malformed


# --- a GitLab issue made confidential and public again within one timestamp -------------

@pytest.mark.parametrize("order", [("confidential", "public"), ("public", "confidential")])
@pytest.mark.parametrize("truth", [True, False])
def test_confidential_and_public_with_the_same_updated_at_end_as_the_forge_says(
        world, gitlab_repo, gitlab_com, order, truth):
    post_gitlab_issue(world.client, gitlab_issue_hook(60, updated=_now_iso(-120)))
    item = gitlab_item(60)
    at = _now_iso(-60)
    hooks = {"confidential": (gitlab_issue_hook(60, action="update", confidential=True, updated=at),
                              "Confidential Issue Hook"),
             "public": (gitlab_issue_hook(60, action="update", confidential=False, updated=at), "Issue Hook")}
    now_on_the_forge = dict(hooks["confidential" if truth else "public"][0]["object_attributes"])
    gitlab_com.repos[("gitlabhq", "gitlab-test")] = {
        "id": world.session.get(type(gitlab_repo), gitlab_repo.id).forge_id, "visibility": "public",
        "issues": [now_on_the_forge], "pulls": []}
    for name in order:
        post_gitlab_issue(world.client, *hooks[name])
    item = world.session.get(BacklogItem, item.id)
    assert (item.hidden, item.private_reason) == ((True, "confidential") if truth else (False, None))
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == (404 if truth else 200)


# --- reconciliation and a confidential issue our token may not read ----------------------

def test_reconciliation_does_not_end_a_confidential_issue_gitlab_hides_from_our_token(
        session, gitlab_forge, stripe_api):
    """GitLab answers 404 for a confidential issue the token may not read, as for a
    deleted one: the item stays withheld (money waits for the window), not deleted."""
    repo = make_repository("health", "records", host="gitlab.example.org")
    confidential = dict(_gitlab_issue(1, "2026-02-01T00:00:00.000Z"), confidential=True)
    forge_repo = {"id": 4242, "default_branch": "main", "pulls": [],
                  "issues": [confidential, _gitlab_issue(2, "2026-02-02T00:00:00.000Z")]}
    gitlab_forge.repos[("health", "records")] = forge_repo
    sync_repository(repo.id, full=True)
    item = find_item("gitlab.example.org", 60_001)
    assert (item.hidden, item.private_reason) == (True, "confidential")
    funder = User(display_name="funder", email_verified_at=utcnow())
    funder.set_email("funder@example.org")
    session.add(funder)
    session.flush()
    pledge = pledges.create(item, funder.id, Money(3000, "USD"), rail=Rail.card, actor="test")
    pledge.payment_intent_id = f"pi_test_{pledge.id}"
    pledges.mark_received(pledge.id, Money(3000, "USD"), actor="test")
    session.commit()
    forge_repo["issues"] = forge_repo["issues"][1:]  # our token no longer sees issue 1: 404
    assert reconcile_repository(repo.id)["deleted_items"] == 0
    item = session.get(BacklogItem, item.id)
    assert (item.deleted_at, item.hidden, item.private_reason) == (None, True, "confidential")
    assert escrow(item.id) == 3000
    # Public again: it comes back, with its money.
    forge_repo["issues"].append(dict(_gitlab_issue(1, "2026-02-03T00:00:00.000Z"), confidential=False))
    sync_repository(repo.id, full=True)
    item = session.get(BacklogItem, item.id)
    assert (item.hidden, item.private_reason) == (False, None)
    assert escrow(item.id) == 3000


# --- an issue transferred out of the commons, then its old repository's visibility ---------

def test_an_issue_transferred_out_of_the_commons_stays_unpublished_when_its_old_repository_goes_private_and_public(
        world, github_forge):
    github_forge.repos[("Codertocat", "Hello-World")] = {"id": 186853002, "visibility": "public", "issues": [],
                                                          "pulls": []}
    item = world.issue(370)
    body = payload("github/webhooks/issues/transferred.json")
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["issue"].update(number=370, id=700370, html_url="https://github.com/Codertocat/Hello-World/issues/370")
    body["changes"]["new_repository"].update(id=999_000_370, name="private-elsewhere",
                                             full_name="Elsewhere/private-elsewhere", private=True)
    body["changes"]["new_repository"]["owner"]["login"] = "Elsewhere"
    body["changes"]["new_issue"].update(id=900_370, number=3, title="Issue 370")
    assert post_github(world.client, "issues", body).status_code == 202
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    for event in ("privatized", "publicized"):
        assert post_github(world.client, "repository",
                           payload(f"github/webhooks/repository/{event}.json")).status_code == 202
    assert world.session.get(BacklogItem, item.id).hidden is True
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    assert world.client.get(f"/api/v1/items/{world.issue(371).id}").status_code == 200


# --- GitHub: deletion while a payout is approved; state_reason spellings -----------------

def _delete(world, number: int) -> None:
    body = payload("github/webhooks/issues/opened.json")
    body["action"] = "deleted"
    body["issue"].update(number=number, id=700000 + number, title=f"Issue {number}",
                         html_url=f"https://github.com/Codertocat/Hello-World/issues/{number}")
    assert post_github(world.client, "issues", body).status_code == 202


def test_deleting_an_item_whose_payout_is_approved_cancels_it_and_refunds_3000(world, stripe_api):

    item = world.issue(380)
    pledge = world.fund(item, 3000)
    ama = world.implementor("ama@example.org", github_id=6380)
    world.pull(480, "Fixes #380", author_id=6380, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    _delete(world, 380)
    assert world.session.get(type(payout), payout.id).state is PayoutState.cancelled
    assert world.session.get(Pledge, pledge.id).refunded_minor == 3000
    assert escrow(item.id) == 0
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW) is False
    assert escrow(item.id) == 0


@pytest.mark.parametrize("reason", ["COMPLETED", "", "Completed", "completed "])
def test_a_github_close_reason_spelt_otherwise_pays_nobody_until_a_maintainer_decides(world, stripe_api, reason):
    item = world.issue(381)
    pledge = world.fund(item, 2000)
    close_github(world, item, reason)
    item = world.session.get(BacklogItem, item.id)
    assert item.close_reason is CloseReason.unknown
    assert world.payouts_of(item) == []
    assert pledges.self_service_refund(pledge.id, actor="test")
    assert escrow(item.id) == 0


def test_a_deleted_issue_transferred_afterwards_stays_deleted_with_its_money_returned(world, stripe_api):
    item = world.issue(382)
    pledge = world.fund(item, 3000)
    _delete(world, 382)
    body = payload("github/webhooks/issues/transferred.json")
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["issue"].update(number=382, id=700382, html_url="https://github.com/Codertocat/Hello-World/issues/382")
    body["changes"]["new_issue"].update(id=900_382, number=4, title="Issue 382",
                                        html_url="https://github.com/Codertocat/Hello-World/issues/4")
    assert post_github(world.client, "issues", body).status_code == 202
    item = world.session.get(BacklogItem, item.id)
    assert item.deleted_at is not None and item.hidden is True
    assert world.session.get(Pledge, pledge.id).refunded_minor == 3000 and escrow(item.id) == 0
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 410


# --- GitLab: confidential flip-flops with a close and a merge, in every order -------------

def _gitlab_merge_hook(iid: int, closes: int, at: str) -> dict:
    data = payload("gitlab/webhooks/merge_request/merge.json")
    data["project"] = gitlab_issue_hook(closes)["project"]
    data["object_attributes"].update(
        iid=iid, id=40_000 + iid, title=f"Fix {closes}", description=f"Closes #{closes}", target_branch="master",
        source_project_id=1, target_project_id=1, state="merged", action="merge", merged_at=at, updated_at=at,
        url=f"https://gitlab.com/gitlabhq/gitlab-test/-/merge_requests/{iid}")
    return data


@pytest.mark.parametrize("order", list(permutations(
    ["merged", "confidential", "closed", "public"])))
def test_confidential_flip_flops_with_a_merge_and_a_close_end_the_same_in_every_order(
        world, gitlab_repo, gitlab_com, order):

    post_gitlab_issue(world.client, gitlab_issue_hook(70, updated=_now_iso(-500)))
    item = gitlab_item(70)
    world.fund(item, 3000)
    gitlab_com.repos[("gitlabhq", "gitlab-test")] = {
        "id": world.session.get(type(gitlab_repo), gitlab_repo.id).forge_id, "visibility": "public",
        "issues": [], "pulls": []}
    events = {
        # The merge closes the issue ("Closes #70"); then it is made confidential, then public again.
        "merged": (_gitlab_merge_hook(170, 70, _now_iso(-400)), "Merge Request Hook"),
        "closed": (gitlab_issue_hook(70, state="closed", action="close", updated=_now_iso(-399)), "Issue Hook"),
        "confidential": (gitlab_issue_hook(70, state="closed", action="update", confidential=True,
                                           updated=_now_iso(-300)), "Confidential Issue Hook"),
        "public": (gitlab_issue_hook(70, state="closed", action="update", updated=_now_iso(-100)), "Issue Hook"),
    }
    for name in order:
        data, event = events[name]
        assert post_gitlab(world.client, event, data).status_code == 202
    item = world.session.get(BacklogItem, item.id)
    assert (item.state.value, item.hidden, item.private_reason, item.solved) == ("closed", False, None, True)
    assert world.client.get(f"/api/v1/items/{item.id}").get_json()["state"] == "solved"
    assert [(p.state, p.gross_minor) for p in world.payouts_of(item)] == [(PayoutState.proposed, 3000)]
    assert escrow(item.id) == 3000


@pytest.mark.parametrize("order", list(permutations(
    ["merged", "closed", "public", "confidential"])))
def test_an_issue_left_confidential_after_a_merge_ends_hidden_and_unpaid_in_every_order(
        world, gitlab_repo, gitlab_com, order):

    post_gitlab_issue(world.client, gitlab_issue_hook(71, updated=_now_iso(-500)))
    item = gitlab_item(71)
    world.fund(item, 3000)
    ama = world.implementor("ama@example.org", github_id=6371)
    gitlab_com.repos[("gitlabhq", "gitlab-test")] = {
        "id": world.session.get(type(gitlab_repo), gitlab_repo.id).forge_id, "visibility": "public",
        "issues": [], "pulls": []}
    events = {
        "merged": (_gitlab_merge_hook(171, 71, _now_iso(-400)), "Merge Request Hook"),
        "closed": (gitlab_issue_hook(71, state="closed", action="close", updated=_now_iso(-399)), "Issue Hook"),
        "public": (gitlab_issue_hook(71, state="closed", action="update", updated=_now_iso(-300)), "Issue Hook"),
        "confidential": (gitlab_issue_hook(71, state="closed", action="update", confidential=True,
                                           updated=_now_iso(-100)), "Confidential Issue Hook"),
    }
    for name in order:
        assert post_gitlab(world.client, events[name][1], events[name][0]).status_code == 202
    item = world.session.get(BacklogItem, item.id)
    assert (item.state.value, item.hidden, item.private_reason) == ("closed", True, "confidential")
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    [payout] = world.payouts_of(item)
    assert (payout.state, payout.gross_minor) == (PayoutState.proposed, 3000)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW) is False  # nothing leaves escrow while private
    assert escrow(item.id) == 3000


# --- GitHub: the whole repository deleted ---------------------------------------------------

def test_a_deleted_repository_ends_its_items_refunds_3000_and_cancels_the_approved_claim(world, stripe_api):
    funded, other = world.issue(390), world.issue(391)
    pledge = world.fund(funded, 3000)
    ama = world.implementor("ama@example.org", github_id=6390)
    claim = world.claim(funded, ama)
    body = payload("github/webhooks/repository/privatized.json")  # the repository object GitHub sends
    body["action"] = "deleted"
    assert post_github(world.client, "repository", body).status_code == 202
    assert last_delivery(world.session) == (
        DeliveryStatus.processed, f"repository deleted on the forge: items {[funded.id, other.id]} ended")
    assert world.session.get(Claim, claim.id).state is ClaimState.cancelled
    assert world.session.get(Pledge, pledge.id).refunded_minor == 3000
    assert escrow(funded.id) == 0
    assert [world.client.get(f"/api/v1/items/{i.id}").status_code for i in (funded, other)] == [410, 410]
    # A redelivery ends nothing more.
    assert post_github(world.client, "repository", body).status_code == 202
    assert last_delivery(world.session) == (DeliveryStatus.processed, "repository deleted on the forge: items [] ended")


def test_a_deleted_repository_of_another_id_that_took_the_name_ends_nothing(world):
    item = world.issue(392)
    body = payload("github/webhooks/repository/privatized.json")
    body["action"] = "deleted"
    body["repository"]["id"] = 999_999_392
    assert post_github(world.client, "repository", body).status_code == 202
    assert last_delivery(world.session) == (DeliveryStatus.ignored, "repository not in the commons")
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200


# --- a maintainer's decision on one unknown close does not decide the next one -------------

def _github_issue_event(world, item, *, state: str, reason: str | None, offset: int) -> None:
    body = payload("github/webhooks/issues/closed.json")
    body["action"] = "closed" if state == "closed" else "reopened"
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["issue"].update(number=item.number, id=item.forge_id, state=state, state_reason=reason,
                         updated_at=_now_iso(offset), closed_at=_now_iso(offset) if state == "closed" else None,
                         html_url=item.html_url)
    assert post_github(world.client, "issues", body).status_code == 202


def test_a_decision_on_an_unknown_close_does_not_pay_the_next_unknown_close_after_a_reopen(world):
    item = world.issue(393)
    world.fund(item, 2500)
    _github_issue_event(world, item, state="closed", reason="archived_by_policy", offset=-300)
    decide_unknown_close(world.session.get(BacklogItem, item.id), "completed", actor="test")
    [payout] = world.payouts_of(item)
    assert (payout.state, payout.gross_minor) == (PayoutState.proposed, 2500)
    _github_issue_event(world, item, state="open", reason="reopened", offset=-200)
    assert world.session.get(type(payout), payout.id).state is PayoutState.cancelled
    _github_issue_event(world, item, state="closed", reason="archived_by_policy", offset=-100)
    item = world.session.get(BacklogItem, item.id)
    assert (item.close_reason, item.close_decision) == (CloseReason.unknown, None)
    assert [p.state for p in world.payouts_of(item)] == [PayoutState.cancelled]
    assert escrow(item.id) == 2500


# --- a GitHub repository made private with money on its items -------------------------------

def test_a_privatized_repository_keeps_3000_within_the_window_and_returns_it_after_even_if_publicized_later(
        world, github_forge, stripe_api):
    github_forge.repos[("Codertocat", "Hello-World")] = {"id": 186853002, "visibility": "public", "issues": [],
                                                          "pulls": []}
    item = world.issue(394)
    pledge = world.fund(item, 3000)
    ama = world.implementor("ama@example.org", github_id=6394)
    claim = world.claim(item, ama)
    assert post_github(world.client, "repository", payload("github/webhooks/repository/privatized.json")
                       ).status_code == 202
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 404
    assert end_withheld(utcnow() + timedelta(days=13)) == []
    assert escrow(item.id) == 3000 and world.session.get(Claim, claim.id).state is ClaimState.approved
    assert end_withheld(utcnow() + timedelta(days=15)) == [item.id]
    assert world.session.get(Pledge, pledge.id).refunded_minor == 3000 and escrow(item.id) == 0
    assert world.session.get(Claim, claim.id).state is ClaimState.cancelled
    assert post_github(world.client, "repository", payload("github/webhooks/repository/publicized.json")
                       ).status_code == 202
    assert world.client.get(f"/api/v1/items/{item.id}").status_code == 200
    assert end_withheld(utcnow() + timedelta(days=30)) == [] and escrow(item.id) == 0


def test_a_confidential_issue_hook_of_a_project_we_never_saw_stores_nothing(world, gitlab_repo):
    data = gitlab_issue_hook(80, confidential=True)
    data["project"].update(id=777, web_url="https://gitlab.com/someone/elsewhere",
                           path_with_namespace="someone/elsewhere")
    data["object_attributes"]["project_id"] = 777
    post_gitlab_issue(world.client, data, "Confidential Issue Hook")
    assert last_delivery(world.session) == (DeliveryStatus.ignored, "project not in the commons")
    assert gitlab_item(80) is None
