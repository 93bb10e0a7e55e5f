"""Claims raced in two real PostgreSQL sessions: one approved claim per item,
and the cap on open claims per person."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import service as claims
from marketplace.claims.models import Claim, ClaimState
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus
from marketplace.timeutil import utcnow
from tests.races import at_once


def seed(items: int, people: int) -> tuple[list[int], list[int]]:
    now = utcnow()
    project = MemberProject(slug="race", name="Race", registry_status=RegistryStatus.active, admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="race", name="race",
                      path_key="race/race", url="https://github.com/race/race")
    rows = [BacklogItem(repository=repo, forge_host="github.com", forge_id=n, number=n, title=f"Race {n}",
                        state=ItemState.open, html_url=f"https://github.com/race/race/issues/{n}",
                        forge_created_at=now, forge_updated_at=now) for n in range(1, items + 1)]
    users = []
    for n in range(people):
        user = User(display_name=f"p{n}", is_implementor=True, email_verified_at=now)
        user.set_email(f"p{n}@example.org")
        users.append(user)
    db.session.add_all([project, repo, *rows, *users])
    db.session.flush()
    # Issue 20: a project with no maintainer takes no claims; the last person seeded maintains it.
    db.session.add(ProjectMaintainer(project_id=project.id, user_id=users[-1].id, granted_by="test"))
    db.session.commit()
    return [r.id for r in rows], [u.id for u in users]


@pytest.mark.postgres
def test_two_maintainers_approving_two_claims_on_one_item_at_once_approve_one(race_app):
    with race_app.app_context():
        [item_id], (a, b, maintainer) = seed(1, 3)
        deadline = utcnow().date() + timedelta(days=5)
        claim_ids = [claims.request_claim(db.session.get(BacklogItem, item_id), db.session.get(User, uid),
                                          plan="p", estimate_days=2, deadline=deadline).id for uid in (a, b)]
        db.session.commit()
        db.session.remove()

    def approve(claim_id):
        def call():
            with race_app.app_context():
                try:
                    claims.approve(db.session.get(Claim, claim_id), maintainer=db.session.get(User, maintainer))
                    db.session.commit()
                    return "approved"
                except claims.ClaimError:
                    db.session.rollback()
                    return "refused"
                finally:
                    db.session.remove()
        return call

    assert sorted(at_once(*(approve(c) for c in claim_ids))) == ["approved", "refused"]
    with race_app.app_context():
        states = db.session.scalars(select(Claim.state).where(Claim.item_id == item_id)).all()
        assert sorted(s.value for s in states) == ["approved", "requested"]


@pytest.mark.postgres
def test_four_requests_at_once_by_one_person_stop_at_the_cap_of_three(race_app):
    with race_app.app_context():
        item_ids, [person] = seed(4, 1)
        db.session.remove()
    deadline = utcnow().date() + timedelta(days=5)

    def request(item_id):
        def call():
            with race_app.app_context():
                try:
                    claims.request_claim(db.session.get(BacklogItem, item_id), db.session.get(User, person),
                                         plan="p", estimate_days=2, deadline=deadline)
                    db.session.commit()
                    return "requested"
                except claims.ClaimError:
                    db.session.rollback()
                    return "refused"
                finally:
                    db.session.remove()
        return call

    assert sorted(at_once(*(request(i) for i in item_ids))) == ["refused"] + ["requested"] * 3
    with race_app.app_context():
        assert db.session.scalar(select(func.count(Claim.id)).where(
            Claim.claimant_id == person, Claim.state == ClaimState.requested)) == 3
