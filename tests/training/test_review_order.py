"""A mentor's review and the merge, in either order and repeated: the payout is
proposed once, only after the mentor's approval (site or forge review)."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.claims.models import ClaimState
from marketplace.payouts.models import PayoutState
from marketplace.training import queries
from marketplace.training.models import MentorReview, ReviewVerdict
from marketplace.webhooks.models import WebhookDelivery
from tests.training.helpers import M1_GITHUB_ID, M2_GITHUB_ID


def _shares(payout):
    return [(s.recipient_id, s.amount_minor) for s in payout.shares]


def test_review_then_merge_proposes_once(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    world.approve_change(claim, world.m1)
    world.merge(10, x)
    world.merge(10, x)  # the same merge delivered again
    [payout] = world.payouts_of(x)
    assert (payout.gross_minor, payout.fee_minor, _shares(payout)) == (5000, 500,
                                                                       [(world.trainee.id, 3600), (world.m1.id, 900)])


def test_a_merge_before_the_mentors_approval_proposes_nothing_until_it_arrives(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    world.merge(10, x)
    assert world.payouts_of(x) == []
    session.refresh(claim)
    assert claim.state is ClaimState.submitted
    assert queries.waits_for_mentor(claim)
    # Changes requested first: still nothing.
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="changes_requested", review_id=71,
                           submitted_at="2019-05-15T16:00:00Z", merged=True)
    assert world.payouts_of(x) == []
    # The approval arrives (from the forge): proposed now, once, even when delivered twice.
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="approved", review_id=72,
                           submitted_at="2019-05-15T17:00:00Z", merged=True, delivery_id="review-72")
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="approved", review_id=72,
                           submitted_at="2019-05-15T17:00:00Z", merged=True)
    [payout] = world.payouts_of(x)
    assert payout.state is PayoutState.proposed
    assert (payout.gross_minor, payout.fee_minor, _shares(payout)) == (5000, 500,
                                                                       [(world.trainee.id, 3600), (world.m1.id, 900)])
    reviews = session.scalars(select(MentorReview).where(MentorReview.claim_id == claim.id)).all()
    assert sorted((r.verdict, r.source) for r in reviews) == [(ReviewVerdict.approved, "github"),
                                                              (ReviewVerdict.changes_requested, "github")]
    session.refresh(claim)
    assert claim.state is ClaimState.completed


def test_a_late_older_review_does_not_undo_the_standing_approval(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="approved", review_id=82,
                           submitted_at="2019-05-15T17:00:00Z", merged=False)
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="changes_requested", review_id=81,
                           submitted_at="2019-05-15T16:00:00Z", merged=False)
    assert queries.standing_verdict(claim.id, world.m1.id) is ReviewVerdict.approved
    world.merge(10, x)
    assert len(world.payouts_of(x)) == 1


def test_a_forge_review_by_someone_else_is_not_the_mentors(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    world.review_on_github(10, x, reviewer_id=M2_GITHUB_ID, state="approved", review_id=91,
                           submitted_at="2019-05-15T17:00:00Z", merged=False)
    world.merge(10, x)
    assert world.payouts_of(x) == []
    assert queries.reviews_of(claim.id) == []
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.event == "pull_request_review"))
    assert "mentor reviews recorded []" in delivery.outcome


def test_same_end_state_in_both_orders(world, session):
    first, second = world.training_item(1, escrow=5000), world.training_item(2, escrow=5000)
    claim = world.mentored(first, world.m1)
    world.approve_change(claim, world.m1)
    world.merge(10, first)
    other = world.mentored(second, world.m1)
    world.merge(11, second)
    world.approve_change(other, world.m1)
    states = []
    for item, c in ((first, claim), (second, other)):
        [payout] = world.payouts_of(item)
        session.refresh(c)
        states.append((payout.state, payout.gross_minor, payout.fee_minor, [s.amount_minor for s in payout.shares],
                       c.state))
    assert states[0] == states[1] == (PayoutState.proposed, 5000, 500, [3600, 900], ClaimState.completed)
