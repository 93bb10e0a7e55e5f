"""Adversarial cases of the training path (issue 19): reviews from the wrong
person or at the wrong time, a mentor removed mid-claim, odd amounts split."""
from __future__ import annotations

import pytest

from marketplace.payouts.models import PayoutState
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.models import ReviewVerdict
from tests.training.helpers import M1_GITHUB_ID, T_GITHUB_ID


def test_the_trainees_own_forge_approval_of_their_change_is_not_a_mentor_review(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    world.review_on_github(10, x, reviewer_id=T_GITHUB_ID, state="approved", review_id=101,
                           submitted_at="2019-05-15T17:00:00Z", merged=False)
    assert queries.reviews_of(claim.id) == []
    world.merge(10, x)
    assert world.payouts_of(x) == []
    with pytest.raises(training.TrainingError):
        training.review(claim, mentor=world.trainee, verdict=ReviewVerdict.approved)


def test_a_forge_review_before_the_claim_is_approved_counts_for_nothing(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.request(x)
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="approved", review_id=102,
                           submitted_at="2019-05-15T17:00:00Z", merged=False)
    assert queries.reviews_of(claim.id) == []
    training.approve_as_mentor(claim, mentor=world.m1, note="ok")
    world.merge(10, x)
    assert world.payouts_of(x) == []  # the early review was no mentor's: the payout waits
    world.approve_change(claim, world.m1)
    [payout] = world.payouts_of(x)
    assert payout.state is PayoutState.proposed


@pytest.mark.parametrize("escrow, percent", [(5003, 80), (1001, 67), (7, 80), (99_999, 33)])
def test_an_odd_amount_splits_exactly(world, session, escrow, percent):
    training.set_rule(world.project, merges_required=3, mentors_required=2, trainee_percent=percent,
                      maintainer=world.maintainer)
    x = world.training_item(1, escrow=escrow)
    claim = world.mentored(x, world.m1)
    world.approve_change(claim, world.m1)
    world.merge(10, x)
    [payout] = world.payouts_of(x)
    amounts = [s.amount_minor for s in payout.shares]
    assert payout.gross_minor == escrow
    assert sum(amounts) == payout.gross_minor - payout.fee_minor
    net = payout.gross_minor - payout.fee_minor
    assert abs(amounts[0] - net * percent / 100) < 1 and abs(amounts[1] - net * (100 - percent) / 100) < 1


def test_a_mentor_removed_while_the_claim_is_active_still_reviews_it_and_the_payout_comes_once(world, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    training.remove_mentor(world.project, world.m1.id, maintainer=world.maintainer)
    world.merge(10, x)
    world.approve_change(claim, world.m1)  # the claims they approved keep them named
    with pytest.raises(training.TrainingError, match="not being worked on"):
        world.approve_change(claim, world.m1)  # completed: nothing more to review
    assert len(world.payouts_of(x)) == 1
