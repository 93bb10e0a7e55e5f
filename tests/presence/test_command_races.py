"""Two real PostgreSQL sessions handle the same ``/claim`` comment at once (two
workers given the same delivery, or a delivery and its redelivery): one claim."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity, User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims.models import Claim
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.presence.commands import CommentEvent, handle_comment
from marketplace.presence.models import ForgeCommand, RepositoryPresence
from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus
from marketplace.timeutil import utcnow
from tests.races import race_database_app


@pytest.fixture
def race_app(database_url):
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_presence_race") as app:
        yield app


def _seed() -> tuple[int, int]:
    now = utcnow()
    project = MemberProject(slug="claim-race", name="Claim race", registry_status=RegistryStatus.active,
                            admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="claim", name="race",
                      path_key="claim/race", url="https://github.com/claim/race", installation_id=1)
    item = BacklogItem(repository=repo, forge_host="github.com", forge_id=31, number=31, title="Race",
                       state=ItemState.open, html_url="https://github.com/claim/race/issues/31",
                       forge_created_at=now, forge_updated_at=now)
    ama = User(display_name="ama", is_implementor=True, email_verified_at=now)
    ama.set_email("ama@example.org")
    maintainer = User(display_name="maintainer", email_verified_at=now)
    maintainer.set_email("maintainer@example.org")
    db.session.add_all([project, repo, item, ama, maintainer])
    db.session.flush()
    db.session.add_all([
        ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"),
        ForgeIdentity(user_id=ama.id, forge="github", host="github.com", forge_user_id=7301, login="ama"),
        RepositoryPresence(repository_id=repo.id, enabled=True)])
    db.session.commit()
    return repo.id, item.id


@pytest.mark.postgres
def test_the_same_claim_comment_handled_by_two_workers_at_once_claims_once(race_app):
    with race_app.app_context():
        repo_id, item_id = _seed()
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def handle():
        with race_app.app_context():
            try:
                repo = db.session.get(Repository, repo_id)
                event = CommentEvent(host="github.com", issue_forge_id=31, issue_number=31, comment_id=880001,
                                     body="/claim my plan", author_forge_id=7301, author_login="ama")
                barrier.wait()
                handled, _what = handle_comment(repo, event)
                db.session.commit()
                outcomes.append(handled)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=handle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, True]
    with race_app.app_context():
        assert db.session.scalar(select(func.count(Claim.id)).where(Claim.item_id == item_id)) == 1
        assert db.session.scalar(select(func.count(ForgeCommand.id))) == 1
        db.session.remove()
