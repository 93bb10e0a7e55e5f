"""GitLab's review verdict is a merge request approval: the mentor's approval
(by their verified GitLab id) lets the training item's payout be proposed."""
from __future__ import annotations

from marketplace.accounts.models import ForgeIdentity
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.timeutil import utcnow
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.models import ReviewVerdict
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_gitlab

AUTHOR_ID = 2251488  # the merge request's author in the recorded hook: the trainee here
MENTOR_GITLAB_ID = 777001


def _hook(action: str, *, user_id: int, state: str) -> dict:
    data = payload("gitlab/webhooks/merge_request/merge.json")
    attributes = data["object_attributes"]
    attributes.update(iid=40, id=90_040, state=state, action=action, description="Closes #7",
                      url="https://gitlab.com/anbraten/woodpecker-test/-/merge_requests/40")
    data["user"]["id"] = user_id
    return data


def test_a_gitlab_approval_by_the_mentor_lets_the_payout_be_proposed(world, client, session):
    repo = make_repository("anbraten", "woodpecker-test", host="gitlab.com", project_slug=world.project.slug)
    now = utcnow()
    item = BacklogItem(repository=repo, forge_host="gitlab.com", forge_id=555007, number=7, title="Training on GitLab",
                       state=ItemState.open, html_url="https://gitlab.com/anbraten/woodpecker-test/-/issues/7",
                       forge_created_at=now, forge_updated_at=now)
    session.add(item)
    session.add_all([ForgeIdentity(user_id=world.trainee.id, forge="gitlab", host="gitlab.com",
                                   forge_user_id=AUTHOR_ID, login="trainee"),
                     ForgeIdentity(user_id=world.m1.id, forge="gitlab", host="gitlab.com",
                                   forge_user_id=MENTOR_GITLAB_ID, login="mentor")])
    session.flush()
    training.mark_item(item, True, maintainer=world.maintainer)
    world.fund(item, 5000)
    claim = world.mentored(item, world.m1)

    assert post_gitlab(client, "Merge Request Hook", _hook("merge", user_id=AUTHOR_ID, state="merged")).status_code \
        == 202
    session.refresh(item)
    assert item.solved_by_id is not None
    assert world.payouts_of(item) == []
    # An approval by someone who is not the claim's mentor changes nothing.
    post_gitlab(client, "Merge Request Hook", _hook("approved", user_id=AUTHOR_ID, state="merged"))
    assert world.payouts_of(item) == []
    post_gitlab(client, "Merge Request Hook", _hook("approved", user_id=MENTOR_GITLAB_ID, state="merged"))
    [payout] = world.payouts_of(item)
    assert (payout.gross_minor, payout.fee_minor) == (5000, 500)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(world.trainee.id, 3600), (world.m1.id, 900)]
    [review] = queries.reviews_of(claim.id)
    assert (review.verdict, review.source, review.mentor_id) == (ReviewVerdict.approved, "gitlab", world.m1.id)


def test_a_withdrawn_gitlab_approval_stands_as_changes_requested(world, client, session):
    repo = make_repository("anbraten", "woodpecker-test", host="gitlab.com", project_slug=world.project.slug)
    now = utcnow()
    item = BacklogItem(repository=repo, forge_host="gitlab.com", forge_id=555007, number=7, title="Training on GitLab",
                       state=ItemState.open, html_url="https://gitlab.com/anbraten/woodpecker-test/-/issues/7",
                       forge_created_at=now, forge_updated_at=now)
    session.add(item)
    session.add_all([ForgeIdentity(user_id=world.trainee.id, forge="gitlab", host="gitlab.com",
                                   forge_user_id=AUTHOR_ID, login="trainee"),
                     ForgeIdentity(user_id=world.m1.id, forge="gitlab", host="gitlab.com",
                                   forge_user_id=MENTOR_GITLAB_ID, login="mentor")])
    session.flush()
    training.mark_item(item, True, maintainer=world.maintainer)
    world.fund(item, 5000)
    claim = world.mentored(item, world.m1)
    approved = _hook("approved", user_id=MENTOR_GITLAB_ID, state="opened")
    approved["object_attributes"]["updated_at"] = "2023-12-05 18:00:00 UTC"
    withdrawn = _hook("unapproved", user_id=MENTOR_GITLAB_ID, state="opened")
    withdrawn["object_attributes"]["updated_at"] = "2023-12-05 18:10:00 UTC"
    post_gitlab(client, "Merge Request Hook", approved)
    post_gitlab(client, "Merge Request Hook", withdrawn)
    assert queries.standing_verdict(claim.id, world.m1.id) is ReviewVerdict.changes_requested
    post_gitlab(client, "Merge Request Hook", _hook("merge", user_id=AUTHOR_ID, state="merged"))
    assert world.payouts_of(item) == []
