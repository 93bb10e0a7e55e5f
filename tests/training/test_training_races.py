"""Two real PostgreSQL sessions: the same trainee asks for two training items at
the same moment; at most one active training claim per trainee holds."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import service as claims
from marketplace.claims.models import Claim
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus
from marketplace.timeutil import utcnow
from marketplace.training.models import TrainingClaim, TrainingItem


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
