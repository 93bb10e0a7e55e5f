"""A training claim whose mentor is gone (account deleted, or no longer a mentor
of the project) waits for a mentor: the project's mentors and maintainers see
it, another mentor takes it over from the claim's page or the training page,
and the trainee and the new mentor are told. The gone mentor's reviews stay."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from marketplace.accounts.models import User
from marketplace.audit.models import AuditEvent
from marketplace.notifications import notices
from marketplace.notifications.models import OutboxMessage
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.models import MentorReview, ReviewVerdict, TrainingClaim
from tests.accounts.helpers import as_user, csrf
from tests.training.helpers import M1_GITHUB_ID, M2_GITHUB_ID, T_GITHUB_ID


def _post(client, path, prefix="", **data):
    token = csrf(client, "/account")
    return client.post(path, data={**data, "csrf_token": token, f"{prefix}csrf_token": token})


def _orphaned_by_deletion(world, session):
    """T's claim on X (escrow 50.00 USD), approved by M1, who asked for changes, then deleted their account."""
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    training.review(claim, mentor=world.m1, verdict=ReviewVerdict.changes_requested, note="Add a test.")
    session.commit()
    m1_id = world.m1.id
    delete_account(session, m1_id)
    assert session.get(User, m1_id) is None
    return x, claim, m1_id


def delete_account(session, user_id: int) -> None:
    """The account goes as the database deletes it (its foreign keys decide what follows)."""
    session.execute(delete(User).where(User.id == user_id))
    session.commit()
    session.expire_all()


def test_a_deleted_mentors_claim_is_taken_over_by_another_mentor_from_its_page(world, app, session):
    x, claim, m1_id = _orphaned_by_deletion(world, session)
    record = session.get(TrainingClaim, claim.id)
    assert record.mentor_id is None
    # The deleted mentor's review stays on record, named to nobody.
    [kept] = queries.reviews_of(claim.id)
    assert (kept.mentor_id, kept.verdict, kept.note) == (None, ReviewVerdict.changes_requested, "Add a test.")
    assert [r.claim_id for r in queries.awaiting_mentor(world.project.id)] == [claim.id]

    page = as_user(app, world.m2).get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "account was deleted: awaiting a mentor" in page
    assert "a former mentor (account deleted)" in page
    assert "Take over as mentor" in page
    # The trainee sees the state but no button; a maintainer who is no mentor neither.
    trainee_page = as_user(app, world.trainee).get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "awaiting a mentor" in trainee_page and "Take over as mentor" not in trainee_page
    assert "Take over as mentor" not in as_user(app, world.maintainer).get(f"/claims/{claim.id}").get_data(
        as_text=True)

    response = _post(as_user(app, world.m2), f"/claims/{claim.id}/mentor/take-over", prefix="takeover-")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/claims/{claim.id}")
    session.expire_all()
    assert session.get(TrainingClaim, claim.id).mentor_id == world.m2.id
    assert queries.awaiting_mentor(world.project.id) == []
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "training.mentor_took_over")).all()
    assert (event.object_id, event.actor_user_id, event.details) == (
        str(claim.id), world.m2.id, {"previous_mentor": None, "mentor": world.m2.id})
    # Told as the other notices are: one outbox row, two e-mails (trainee, new mentor).
    [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.notice_subject == "training")).all()
    assert (row.notice_kind, row.object_id) == ("mentor_changed", claim.id)
    mails = notices.compose("training", "mentor_changed", claim.id)
    assert [to for to, _subject, _body in mails] == ["t@example.org", "m2@example.org"]
    assert mails[0][1] == "m2 now mentors your training claim"
    assert mails[1][1] == f"You now mentor a training claim on \"{x.title}\""
    assert f"/claims/{claim.id}" in mails[0][2] and f"/claims/{claim.id}" in mails[1][2]

    # The new mentor approves; the merge proposes the payout, split with them (80/20 of 45.00).
    world.approve_change(claim, world.m2)
    world.merge(10, x)
    [payout] = world.payouts_of(x)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(world.trainee.id, 3600),
                                                                          (world.m2.id, 900)]
    reviews = queries.reviews_of(claim.id)
    assert [(r.mentor_id, r.verdict) for r in reviews] == [(None, ReviewVerdict.changes_requested),
                                                           (world.m2.id, ReviewVerdict.approved)]


def test_a_removed_mentors_claim_awaits_a_mentor_on_the_training_page(world, app, session):
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    session.commit()
    slug = world.project.slug
    assert "Training claims awaiting a mentor" not in client_page(app, world.trainee, slug)
    maintainer_page = client_page(app, world.maintainer, slug)
    assert "None: every training claim has its mentor." in maintainer_page
    # M2 cannot take over a claim that has its mentor.
    with pytest.raises(training.TrainingError, match="This claim has a mentor: m1"):
        training.take_over(claim, mentor=world.m2)
    training.remove_mentor(world.project, world.m1.id, maintainer=world.maintainer)
    session.commit()
    record = session.get(TrainingClaim, claim.id)
    assert record.mentor_id == world.m1.id and queries.mentor_gone(record)
    # The removed mentor still reviews the claim they approved (test_breakforge) until someone takes it
    # over, but cannot take it back.
    with pytest.raises(training.TrainingError, match="Only a mentor of the project can take over"):
        training.take_over(claim, mentor=world.m1)
    for viewer in (world.maintainer, world.m2):
        page = client_page(app, viewer, slug)
        assert "Training claims awaiting a mentor" in page and f"/claims/{claim.id}" in page
    assert "Training claims awaiting a mentor" not in client_page(app, None, slug)
    assert "/mentor/take-over" not in client_page(app, world.maintainer, slug)  # a maintainer, not a mentor
    m2 = as_user(app, world.m2)
    assert f"/claims/{claim.id}/mentor/take-over" in m2.get(f"/projects/{slug}/training").get_data(as_text=True)
    assert _post(m2, f"/claims/{claim.id}/mentor/take-over", prefix="takeover-").status_code == 303
    session.expire_all()
    assert session.get(TrainingClaim, claim.id).mentor_id == world.m2.id
    # Taken over: the removed mentor's review now counts for nothing, from the site or the forge.
    with pytest.raises(training.TrainingError, match="Only the mentor named on the claim reviews it"):
        world.approve_change(session.get(TrainingClaim, claim.id).claim, world.m1)
    world.pull(10, f"Fixes #{x.number}", author_id=T_GITHUB_ID, merged=False, state="open")
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="approved", review_id=81,
                           submitted_at="2019-05-15T17:00:00Z", merged=False)
    assert queries.reviews_of(claim.id) == []
    # A second take-over (M2 again, or anyone) is refused: the claim has its mentor.
    with pytest.raises(training.TrainingError, match="This claim has a mentor: m2"):
        training.take_over(session.get(TrainingClaim, claim.id).claim, mentor=world.m2)


def client_page(app, user, slug: str) -> str:
    client = as_user(app, user) if user is not None else app.test_client()
    return client.get(f"/projects/{slug}/training").get_data(as_text=True)


def test_a_mentor_cannot_take_over_their_own_training_claim(world, session):
    # The maintainer, named a mentor, holds a training claim (not certified) whose mentor is then deleted.
    training.name_mentor(world.project, world.maintainer, maintainer=world.maintainer)
    x = world.training_item(1)
    claim = world.request(x, world.maintainer)
    training.approve_as_mentor(claim, mentor=world.m1)
    session.commit()
    delete_account(session, world.m1.id)
    with pytest.raises(training.TrainingError, match="You cannot mentor your own claim"):
        training.take_over(claim, mentor=world.maintainer)
    training.take_over(claim, mentor=world.m2)
    assert session.get(TrainingClaim, claim.id).mentor_id == world.m2.id


def test_a_requested_or_finished_claim_is_not_taken_over(world, session):
    requested = world.request(world.training_item(1))
    with pytest.raises(training.TrainingError, match="not being worked on"):
        training.take_over(requested, mentor=world.m2)
    assert queries.awaiting_mentor(world.project.id) == []
    assert session.scalars(select(MentorReview)).all() == []


def test_a_certified_implementor_not_named_a_mentor_cannot_take_over(world, session):
    x, claim, _m1_id = _orphaned_by_deletion(world, session)
    outsider = world.implementor("certified-outsider@example.org", 5077)  # certified for P, not its mentor
    with pytest.raises(training.TrainingError, match="Only a mentor of the project can take over"):
        training.take_over(claim, mentor=outsider)
    assert session.get(TrainingClaim, claim.id).mentor_id is None
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "training.mentor_took_over")) is None


def test_after_a_take_over_a_review_on_another_pull_request_is_not_the_claims(world, session):
    """M2 takes over T's claim on X, then approves T's pull request #11, which closes Y
    (not X): nothing is recorded on X's claim. M2's approval of #10 (closes X) is."""
    x, claim, _m1_id = _orphaned_by_deletion(world, session)
    training.take_over(claim, mentor=world.m2)
    y = world.issue(2)
    session.commit()
    world.review_on_github(11, y, reviewer_id=M2_GITHUB_ID, state="approved", review_id=91,
                           submitted_at="2019-05-15T17:00:00Z", merged=False)
    assert [(r.mentor_id, r.source) for r in queries.reviews_of(claim.id)] == [(None, "site")]
    world.review_on_github(10, x, reviewer_id=M2_GITHUB_ID, state="approved", review_id=92,
                           submitted_at="2019-05-15T17:05:00Z", merged=False)
    assert [(r.mentor_id, r.source, r.verdict) for r in queries.reviews_of(claim.id)] == [
        (world.m2.id, "github", ReviewVerdict.approved),  # submitted in 2019: reviews are in submitted order
        (None, "site", ReviewVerdict.changes_requested)]
    assert queries.standing_verdict(claim.id, world.m2.id) is ReviewVerdict.approved
