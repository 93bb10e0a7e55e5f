"""Issue 19's scenario, with its exact values: project P (USD, fee 10%) requires 3
training merges reviewed by 2 mentors; trainee T earns P's certification."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.claims import service as claims
from marketplace.claims.certification import DEFAULT_VALIDITY, is_certified
from marketplace.claims.models import Certification, ClaimState
from marketplace.notifications.models import OutboxMessage
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutState, ShareState
from marketplace.projects.models import ProjectMaintainer
from marketplace.timeutil import utcnow
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.models import EarnedCertification, ReviewVerdict
from tests.payouts.helpers import AFTER_WINDOW


def test_trainee_paid_with_mentor_and_certified_on_the_third_mentored_merge(world, session):
    t, m1, m2 = world.trainee, world.m1, world.m2
    x = world.training_item(1, escrow=5000)
    y = world.training_item(2)
    z = world.training_item(3)

    claim_x = world.request(x)
    assert queries.training_claim_of(claim_x.id).trainee_id == t.id
    # A maintainer who is not a mentor cannot approve a training claim the usual way.
    with pytest.raises(claims.ClaimError):
        claims.approve(claim_x, maintainer=world.maintainer)
    training.approve_as_mentor(claim_x, mentor=m1, note="Start with the failing test.")
    assert claim_x.state is ClaimState.approved
    assert queries.training_claim_of(claim_x.id).mentor_id == m1.id

    # A second training claim while X is active is refused.
    with pytest.raises(claims.ClaimError, match="active training claim"):
        world.request(y)

    # M1 approves the change, then it merges: the payout is proposed, split 80/20 of the net.
    world.approve_change(claim_x, m1)
    world.merge(10, x)
    [payout] = world.payouts_of(x)
    assert payout.state is PayoutState.proposed
    assert (payout.gross_minor, payout.fee_minor) == (5000, 500)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(t.id, 3600), (m1.id, 900)]
    session.refresh(claim_x)
    assert claim_x.state is ClaimState.completed

    # The trainee is paid though not certified; the mentor as a certified recipient.
    payouts.approve(payout.id, maintainer=world.maintainer, recipients=[(t.id, 8000), (m1.id, 2000)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    shares = {s.recipient_id: s for s in payout.shares}
    assert shares[t.id].amount_minor == 3600 and shares[m1.id].amount_minor == 900
    assert shares[t.id].state is not ShareState.awaiting_certification
    assert shares[m1.id].state is not ShareState.awaiting_certification
    assert not is_certified(t.id, world.project.id)
    assert queries.progress(t.id, world.project.id)["merges"] == 1

    # Y, mentored and reviewed by M2: 2 of 3, by 2 mentors, not yet certified.
    claim_y = world.mentored(y, m2)
    world.approve_change(claim_y, m2)
    world.merge(11, y)
    session.refresh(claim_y)
    assert claim_y.state is ClaimState.completed
    progress = queries.progress(t.id, world.project.id)
    assert (progress["merges"], progress["merges_required"], progress["mentors"]) == (2, 3, 2)
    assert not progress["certified"]

    # Z, mentored by M1: the third merge certifies T for P, with the usual expiry.
    claim_z = world.mentored(z, m1)
    world.approve_change(claim_z, m1)
    before = utcnow()
    world.merge(12, z)
    after = utcnow()
    [cert] = session.scalars(select(Certification).where(Certification.user_id == t.id)).all()
    assert cert.project_id == world.project.id
    assert before <= cert.issued_at <= after
    assert cert.expires_at == cert.issued_at + DEFAULT_VALIDITY
    assert cert.issued_by_id == m1.id
    earned = session.get(EarnedCertification, cert.id)
    assert (earned.merges, earned.mentors) == (3, 2)
    assert is_certified(t.id, world.project.id)
    assert queries.earned_in(world.project.id) == [earned]
    mails = session.scalars(select(OutboxMessage).where(OutboxMessage.notice_subject == "certification",
                                                        OutboxMessage.object_id == cert.id)).all()
    assert [m.notice_kind for m in mails] == ["earned"]

    # Now T claims ordinary items of P as a certified implementor: a maintainer approves.
    ordinary = world.issue(4)
    claim_o = world.request(ordinary)
    assert queries.training_claim_of(claim_o.id) is None
    claims.approve(claim_o, maintainer=world.maintainer)
    assert claim_o.state is ClaimState.approved


def test_a_mentor_cannot_mentor_or_review_their_own_claim(world, session):
    # A maintainer named mentor, not certified: their claim on a training item is a training claim.
    own = world.user("mentor-maintainer@example.org", implementor=True, github_id=5009)
    session.add(ProjectMaintainer(project_id=world.project.id, user_id=own.id, granted_by="test"))
    session.flush()
    training.name_mentor(world.project, own, maintainer=world.maintainer)
    item = world.training_item(1)
    claim = world.request(item, own)
    assert queries.training_claim_of(claim.id) is not None
    with pytest.raises(training.TrainingError, match="own claim"):
        training.approve_as_mentor(claim, mentor=own)
    with pytest.raises(claims.ClaimError):
        claims.approve(claim, maintainer=own)
    training.approve_as_mentor(claim, mentor=world.m1)
    with pytest.raises(training.TrainingError):
        training.review(claim, mentor=own, verdict=ReviewVerdict.approved)
    # Only the mentor named on the claim reviews it.
    with pytest.raises(training.TrainingError, match="named on the claim"):
        training.review(claim, mentor=world.m2, verdict=ReviewVerdict.approved)


def test_an_uncertified_mentor_is_not_paid_the_trainee_has_the_net(world, session):
    mentor = world.user("uncertified-mentor@example.org", implementor=True, github_id=5010)
    session.add(ProjectMaintainer(project_id=world.project.id, user_id=mentor.id, granted_by="test"))
    session.flush()
    training.name_mentor(world.project, mentor, maintainer=world.maintainer)
    item = world.training_item(1, escrow=5000)
    claim = world.mentored(item, mentor)
    world.approve_change(claim, mentor)
    world.merge(10, item)
    [payout] = world.payouts_of(item)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(world.trainee.id, 4500)]
    assert payout.state is PayoutState.proposed  # not waiting for the trainee's certification


def test_the_cap_on_active_claims_still_holds_for_training_claims(world, app, session):
    limit = app.config["CLAIM_ACTIVE_LIMIT"]
    for n in range(limit):
        world.request(world.issue(20 + n))
    with pytest.raises(claims.ClaimError, match="open claims"):
        world.request(world.training_item(1))


def test_certification_needs_two_different_mentors(world, session):
    for n, number in enumerate((1, 2, 3)):
        item = world.training_item(number)
        claim = world.mentored(item, world.m1)
        world.approve_change(claim, world.m1)
        world.merge(10 + n, item)
    assert queries.merged_counts(world.trainee.id, world.project.id) == (3, 1)
    assert not is_certified(world.trainee.id, world.project.id)
    item = world.training_item(4)
    claim = world.mentored(item, world.m2)
    world.approve_change(claim, world.m2)
    world.merge(14, item)
    assert is_certified(world.trainee.id, world.project.id)


def test_a_maintainer_revokes_an_earned_certification_with_a_reason(world, session):
    training.set_rule(world.project, merges_required=1, mentors_required=1, trainee_percent=80,
                      maintainer=world.maintainer)
    item = world.training_item(1)
    claim = world.mentored(item, world.m1)
    world.approve_change(claim, world.m1)
    world.merge(10, item)
    [earned] = queries.earned_in(world.project.id)
    with pytest.raises(training.TrainingError):
        training.revoke_earned(earned, maintainer=world.maintainer, reason=" ")
    training.revoke_earned(earned, maintainer=world.maintainer, reason="Plagiarised work.")
    assert earned.revoked_reason == "Plagiarised work."
    assert not is_certified(world.trainee.id, world.project.id)
    assert queries.earned_in(world.project.id) == []
    assert earned.certification.revoked_at is not None
    assert earned.certification.expires_at > utcnow() + timedelta(days=1)
