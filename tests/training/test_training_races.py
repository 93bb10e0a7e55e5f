"""Two real PostgreSQL sessions: the same trainee asks for two training items at
the same moment; at most one active training claim per trainee holds."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import service as claims
from marketplace.claims.models import Claim
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus
from marketplace.timeutil import utcnow
from marketplace.training.models import TrainingClaim, TrainingItem
from tests.races import at_once


def _seed() -> tuple[list[int], int]:
    now = utcnow()
    project = MemberProject(slug="train-race", name="Train race", registry_status=RegistryStatus.active,
                            admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="train", name="race",
                      path_key="train/race", url="https://github.com/train/race")
    items = [BacklogItem(repository=repo, forge_host="github.com", forge_id=n, number=n, title=f"Training {n}",
                         state=ItemState.open, html_url=f"https://github.com/train/race/issues/{n}",
                         forge_created_at=now, forge_updated_at=now) for n in (1, 2)]
    trainee = User(display_name="trainee", is_implementor=True, email_verified_at=now)
    trainee.set_email("trainee@example.org")
    maintainer = User(display_name="maintainer", email_verified_at=now)
    maintainer.set_email("maintainer@example.org")
    db.session.add_all([project, repo, *items, trainee, maintainer])
    db.session.flush()
    db.session.add(ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"))
    db.session.add_all([TrainingItem(item_id=item.id, marked_by_id=maintainer.id) for item in items])
    db.session.commit()
    return [item.id for item in items], trainee.id


@pytest.mark.postgres
def test_two_training_claims_by_one_trainee_at_once_make_one(race_app):
    with race_app.app_context():
        item_ids, trainee_id = _seed()
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def ask(item_id):
        with race_app.app_context():
            try:
                item, trainee = db.session.get(BacklogItem, item_id), db.session.get(User, trainee_id)
                barrier.wait()
                claims.request_claim(item, trainee, plan="p", estimate_days=2,
                                     deadline=utcnow().date() + timedelta(days=5))
                db.session.commit()
                outcomes.append("claimed")
            except claims.ClaimError as exc:
                db.session.rollback()
                outcomes.append("refused" if "active training claim" in str(exc) else str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask, args=(item_id,)) for item_id in item_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["claimed", "refused"]
    with race_app.app_context():
        assert db.session.scalar(select(func.count(Claim.id)).where(Claim.claimant_id == trainee_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(TrainingClaim)
                                 .where(TrainingClaim.trainee_id == trainee_id)) == 1
        db.session.remove()


def _seed_three_merged() -> tuple[int, int]:
    """Trainee with three completed, merged, mentor-approved training claims (two mentors)."""
    from marketplace.backlog.models import PullRequest, PullRequestState
    from marketplace.claims.models import ClaimState
    from marketplace.training.models import MentorReview, ReviewVerdict

    now = utcnow()
    project = MemberProject(slug="cert-race", name="Cert race", registry_status=RegistryStatus.active,
                            admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="cert", name="race",
                      path_key="cert/race", url="https://github.com/cert/race")
    people = []
    for name in ("trainee", "m1", "m2"):
        person = User(display_name=name, is_implementor=True, email_verified_at=now)
        person.set_email(f"{name}@example.org")
        people.append(person)
    db.session.add_all([project, repo, *people])
    db.session.flush()
    trainee, m1, m2 = people
    for n, mentor in ((1, m1), (2, m2), (3, m1)):
        item = BacklogItem(repository=repo, forge_host="github.com", forge_id=n, number=n, title=f"T {n}",
                           state=ItemState.open, html_url=f"https://github.com/cert/race/issues/{n}",
                           forge_created_at=now, forge_updated_at=now)
        pull = PullRequest(repository=repo, forge_host="github.com", forge_id=100 + n, number=100 + n,
                           title="Fix", state=PullRequestState.merged, html_url=f"https://github.com/cert/race/pull/{n}",
                           forge_created_at=now, forge_updated_at=now, merged_at=now)
        db.session.add_all([item, pull])
        db.session.flush()
        claim = Claim(item_id=item.id, claimant_id=trainee.id, plan="p", estimate_days=2,
                      deadline=now.date() + timedelta(days=5), state=ClaimState.completed, pull_request_id=pull.id,
                      closed_at=now)
        db.session.add(claim)
        db.session.flush()
        db.session.add_all([
            TrainingClaim(claim_id=claim.id, project_id=project.id, trainee_id=trainee.id, mentor_id=mentor.id),
            MentorReview(claim_id=claim.id, mentor_id=mentor.id, verdict=ReviewVerdict.approved, note="ok")])
    db.session.commit()
    return trainee.id, project.id


@pytest.mark.postgres
def test_two_merges_completing_at_once_certify_the_trainee_once(race_app):
    from marketplace.claims.models import Certification
    from marketplace.training import service as training
    from marketplace.training.models import EarnedCertification

    with race_app.app_context():
        trainee_id, project_id = _seed_three_merged()
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def complete():
        with race_app.app_context():
            try:
                db.session.get(User, trainee_id)
                barrier.wait()
                outcomes.append(training.certify_if_earned(trainee_id, project_id) is not None)
                db.session.commit()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, True]
    with race_app.app_context():
        assert db.session.scalar(select(func.count(Certification.id))
                                 .where(Certification.user_id == trainee_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(EarnedCertification)) == 1
        db.session.remove()


def _seed_orphaned_claim(*, removed: bool = False) -> tuple[int, list[int]]:
    """An approved training claim whose mentor's account was deleted (``removed``: who was
    removed as a mentor of the project instead, keeping the account); two mentors of the
    project (certified)."""
    from marketplace.claims.models import Certification, ClaimState
    from marketplace.training.models import ProjectMentor

    now = utcnow()
    project = MemberProject(slug="orphan-race", name="Orphan race", registry_status=RegistryStatus.active,
                            admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="orphan", name="race",
                      path_key="orphan/race", url="https://github.com/orphan/race")
    item = BacklogItem(repository=repo, forge_host="github.com", forge_id=1, number=1, title="Training 1",
                       state=ItemState.open, html_url="https://github.com/orphan/race/issues/1",
                       forge_created_at=now, forge_updated_at=now)
    people = []
    for name in ("trainee", "maintainer", "m1", "m2", "m3"):
        person = User(display_name=name, is_implementor=True, email_verified_at=now)
        person.set_email(f"{name}@example.org")
        people.append(person)
    db.session.add_all([project, repo, item, *people])
    db.session.flush()
    trainee, maintainer, m1, m2, m3 = people
    db.session.add(ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"))
    for mentor in (m1, m2, m3):
        db.session.add_all([
            Certification(user_id=mentor.id, project_id=project.id, issued_by_id=maintainer.id, issued_at=now,
                          expires_at=now + timedelta(days=365)),
            ProjectMentor(project_id=project.id, user_id=mentor.id, named_by_id=maintainer.id)])
    claim = Claim(item_id=item.id, claimant_id=trainee.id, plan="p", estimate_days=2,
                  deadline=now.date() + timedelta(days=5), state=ClaimState.approved)
    db.session.add(claim)
    db.session.flush()
    db.session.add(TrainingClaim(claim_id=claim.id, project_id=project.id, trainee_id=trainee.id,
                                 mentor_id=m1.id))
    db.session.commit()
    if removed:  # no longer a mentor of the project: still named on the claim
        db.session.execute(delete(ProjectMentor).where(ProjectMentor.user_id == m1.id))
    else:
        db.session.execute(delete(User).where(User.id == m1.id))  # the mentor's account goes
    db.session.commit()
    return claim.id, [m2.id, m3.id]


@pytest.mark.postgres
def test_two_mentors_taking_over_an_orphaned_claim_at_once_name_one(race_app):
    from marketplace.audit.models import AuditEvent
    from marketplace.notifications.models import OutboxMessage
    from marketplace.training import service as training

    with race_app.app_context():
        claim_id, mentor_ids = _seed_orphaned_claim()
        assert db.session.get(TrainingClaim, claim_id).mentor_id is None
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = {}

    def take(mentor_id):
        with race_app.app_context():
            try:
                claim, mentor = db.session.get(Claim, claim_id), db.session.get(User, mentor_id)
                barrier.wait()
                training.take_over(claim, mentor=mentor)
                db.session.commit()
                outcomes[mentor_id] = "took over"
            except training.TrainingError as exc:
                db.session.rollback()
                outcomes[mentor_id] = "refused" if "This claim has a mentor" in str(exc) else str(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=take, args=(mentor_id,)) for mentor_id in mentor_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["refused", "took over"]
    [winner] = [mentor_id for mentor_id, outcome in outcomes.items() if outcome == "took over"]
    with race_app.app_context():
        assert db.session.get(TrainingClaim, claim_id).mentor_id == winner
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "training.mentor_took_over")) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.notice_subject == "training")) == 1
        db.session.remove()


@pytest.mark.postgres
def test_a_removed_mentors_review_waiting_on_the_item_lock_during_a_take_over_is_refused(race_app):
    """M1, removed as a mentor, approves the change from the site: the review passes its
    first look (M1 is still named) and waits for the item's row lock, held here while M2
    takes the claim over and commits. M1's review then finds M2 named and is refused: no
    review by M1 is recorded after the take-over (it would count for nothing, and an
    approval would have proposed the payout with M1's share)."""
    from marketplace.training import service as training
    from marketplace.training.models import MentorReview, ReviewVerdict

    with race_app.app_context():
        claim_id, (m2_id, _m3_id) = _seed_orphaned_claim(removed=True)
        m1_id = db.session.scalar(select(User.id).where(User.display_name == "m1"))
        item_id = db.session.get(Claim, claim_id).item_id
        db.session.remove()
    outcome = []

    def review_as_m1():
        with race_app.app_context():
            try:
                claim, m1 = db.session.get(Claim, claim_id), db.session.get(User, m1_id)
                training.review(claim, mentor=m1, verdict=ReviewVerdict.approved)
                db.session.commit()
                outcome.append("recorded")
            except training.TrainingError as exc:
                db.session.rollback()
                outcome.append(str(exc))
            finally:
                db.session.remove()

    with race_app.app_context():
        db.session.get(BacklogItem, item_id, with_for_update=True)  # the item's row lock, held
        thread = threading.Thread(target=review_as_m1)
        thread.start()
        for _ in range(400):  # until M1's review waits on the item's lock
            if db.session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")):
                break
            time.sleep(0.025)
        else:
            raise AssertionError("M1's review never waited on the item's lock")
        training.take_over(db.session.get(Claim, claim_id), mentor=db.session.get(User, m2_id))
        db.session.commit()
        thread.join(30)
        db.session.remove()
    assert outcome == ["Only the mentor named on the claim reviews it."]
    with race_app.app_context():
        assert db.session.get(TrainingClaim, claim_id).mentor_id == m2_id
        assert db.session.scalar(select(func.count()).select_from(MentorReview)) == 0
        db.session.remove()


def _seed_gitlab_claim() -> int:
    """T's approved training claim on #7 of a GitLab repository, mentored by M1 (GitLab
    ids: T 9, M1 777001); T's open merge request !40 closes it. Returns the pull request's id."""
    from marketplace.accounts.models import ForgeIdentity
    from marketplace.backlog.models import ItemLink, ItemLinkKind, LinkSource, PullRequest, PullRequestState
    from marketplace.claims.models import Certification, ClaimState
    from marketplace.training.models import ProjectMentor

    now = utcnow()
    host = "gitlab.example.org"
    project = MemberProject(slug="gitlab-race", name="GitLab race", registry_status=RegistryStatus.active,
                            admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.gitlab, host=host, owner="health", name="records",
                      path_key="health/records", url=f"https://{host}/health/records")
    item = BacklogItem(repository=repo, forge_host=host, forge_id=7007, number=7, title="Training 7",
                       state=ItemState.open, html_url=f"https://{host}/health/records/-/issues/7",
                       forge_created_at=now, forge_updated_at=now)
    pull = PullRequest(repository=repo, forge_host=host, forge_id=70_040, number=40, title="MR 40",
                       state=PullRequestState.open, author_login="dev", author_forge_id=9,
                       html_url=f"https://{host}/health/records/-/merge_requests/40", forge_created_at=now,
                       forge_updated_at=now)
    trainee, maintainer, m1 = (User(display_name=name, is_implementor=True, email_verified_at=now)
                               for name in ("trainee", "maintainer", "m1"))
    for person in (trainee, maintainer, m1):
        person.set_email(f"{person.display_name}@example.org")
    db.session.add_all([project, repo, item, pull, trainee, maintainer, m1])
    db.session.flush()
    db.session.add_all([
        ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"),
        Certification(user_id=m1.id, project_id=project.id, issued_by_id=maintainer.id, issued_at=now,
                      expires_at=now + timedelta(days=365)),
        ProjectMentor(project_id=project.id, user_id=m1.id, named_by_id=maintainer.id),
        ForgeIdentity(user_id=trainee.id, forge="gitlab", host=host, forge_user_id=9, login="dev"),
        ForgeIdentity(user_id=m1.id, forge="gitlab", host=host, forge_user_id=777001, login="mentor"),
        ItemLink(pull_request_id=pull.id, item_id=item.id, target_host=host, target_path="health/records",
                 target_number=7, kind=ItemLinkKind.closes, source=LinkSource.keyword)])
    claim = Claim(item_id=item.id, claimant_id=trainee.id, plan="p", estimate_days=2,
                  deadline=now.date() + timedelta(days=5), state=ClaimState.approved)
    db.session.add(claim)
    db.session.flush()
    db.session.add(TrainingClaim(claim_id=claim.id, project_id=project.id, trainee_id=trainee.id,
                                 mentor_id=m1.id))
    db.session.commit()
    return pull.id


@pytest.mark.postgres
def test_a_gitlab_approval_seen_by_its_hook_and_by_sync_at_once_is_recorded_once(race_app):
    """Sync lists M1's approval (approved_at 10:00) as its hook (10:00:01) is handled:
    whichever decides first, the other sees it under the item's lock: one review."""
    from datetime import datetime

    from marketplace.backlog.models import PullRequest
    from marketplace.training import service as training
    from marketplace.training.models import MentorReview, ReviewVerdict

    with race_app.app_context():
        pull_id = _seed_gitlab_claim()
        db.session.remove()

    def sight(standing: bool):
        def call():
            with race_app.app_context():
                try:
                    pull = db.session.get(PullRequest, pull_id)
                    recorded = training.record_forge_review(
                        pull, reviewer_forge_id=777001, verdict=ReviewVerdict.approved, note="",
                        external_id=("gitlab.example.org:approval:70040:777001:2026-02-04T10:00:00" if standing
                                     else "gitlab.example.org:delivery:1"),
                        submitted_at=datetime(2026, 2, 4, 10, 0, 0 if standing else 1), standing=standing)
                    db.session.commit()
                    return len(recorded)
                finally:
                    db.session.remove()
        return call

    for _ in range(5):  # several rounds: either may win each time
        with race_app.app_context():
            db.session.execute(delete(MentorReview))
            db.session.commit()
            db.session.remove()
        outcomes = at_once(sight(True), sight(False))
        with race_app.app_context():
            assert db.session.scalar(select(func.count()).select_from(MentorReview)) == 1
            db.session.remove()
        assert sorted(outcomes) == [0, 1]
