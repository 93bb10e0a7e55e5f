"""The maintainers' page that turns the forge comment and label on and off (issue 22)."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.audit.models import AuditEvent
from marketplace.presence.models import RepositoryPresence
from tests.accounts.helpers import as_user, csrf, person
from tests.presence.helpers import comments


def test_a_maintainer_turns_it_on_and_off_and_others_cannot(app, world, session, github_forge):
    item = world.issue(801)
    world.fund(item, 5000)
    session.commit()
    path = f"/projects/{world.project.slug}/forge"
    assert world.client.get(path).status_code == 302  # sign in first
    stranger = as_user(app, person(session, "stranger@example.org"))
    assert stranger.get(path).status_code == 403
    maintainer = as_user(app, world.maintainer)
    page = maintainer.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Codertocat/Hello-World" in html and "The commons' GitHub App is not installed" in html
    action = f"{path}/{world.repo.id}"
    refused = maintainer.post(action, data={"csrf_token": csrf(maintainer, path), "turn_on": "1"})
    assert refused.status_code == 400
    assert 'role="alert"' in refused.get_data(as_text=True)
    world.repo.installation_id = 4242
    session.commit()
    done = maintainer.post(action, data={"csrf_token": csrf(maintainer, path), "turn_on": "1"})
    assert done.status_code == 303
    # Turning it on brings the comment to the item funded before.
    assert len(comments(github_forge, 801)) == 1
    row = session.scalar(select(RepositoryPresence).where(RepositoryPresence.repository_id == world.repo.id))
    assert row.enabled and row.changed_by_id == world.maintainer.id
    assert maintainer.post(action, data={"csrf_token": csrf(maintainer, path), "turn_off": "1"}).status_code == 303
    session.refresh(row)
    assert not row.enabled
    assert stranger.post(action, data={"csrf_token": csrf(stranger, "/account"), "turn_on": "1"}).status_code == 403
    kinds = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "repository",
                                                            AuditEvent.object_id == str(world.repo.id))).all()
    assert "forge_presence.enabled" in kinds and "forge_presence.disabled" in kinds
