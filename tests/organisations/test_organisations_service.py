"""The organisations service: slugs, creating, inviting and accepting (the caller commits)."""
from sqlalchemy import select

from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.audit.models import AuditEvent
from marketplace.extensions import db
from marketplace.organisations import service as organisations


def _person(email: str, name: str) -> User:
    return accounts.create_account(email, "a long enough password", name, funder=True, implementor=True)


def test_a_new_organisation_has_a_free_slug_and_its_owner_as_accepted_member(app, session):
    owner = _person("owner@example.org", "Owner")
    first = organisations.create("Médecins & Co", kind="implementor", country="KE", owner=owner)
    second = organisations.create("Médecins & Co", kind="funder", country=None, owner=owner)
    reserved = organisations.create("New", kind="funder", country=None, owner=owner)
    assert (first.slug, second.slug, reserved.slug) == ("medecins-co", "medecins-co-2", "new-2")
    assert [(m.user_id, m.role, m.accepted_at is not None) for m in first.members] == [(owner.id, "owner", True)]
    assert organisations.organisations_of(owner.id, kind="implementor") == [first]
    assert db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "organisation", AuditEvent.object_id == str(first.id))).all() \
        == ["organisation.created"]


def test_organisation_slugs_stay_readable_in_every_script_and_their_pages_answer(app, session, client):
    owner = _person("owner@example.org", "Owner")
    latin = organisations.create("Société Générale", kind="funder", country="FR", owner=owner)
    cyrillic = organisations.create("Гражданский реестр", kind="implementor", country=None, owner=owner)
    db.session.commit()
    assert (latin.slug, cyrillic.slug) == ("societe-generale", "гражданский-реестр")
    for org in (latin, cyrillic):
        page = client.get(f"/organisations/{org.slug}")
        assert page.status_code == 200 and org.name in page.get_data(as_text=True)


def test_an_invitation_waits_for_its_answer_and_is_recorded_once(app, session):
    owner, member = _person("owner@example.org", "Owner"), _person("member@example.org", "Member")
    org = organisations.create("Firm", kind="implementor", country=None, owner=owner)
    assert organisations.invite(org, "nobody@example.org", inviter=owner) is False
    assert organisations.invite(org, "MEMBER@example.org", inviter=owner) is True
    assert organisations.invite(org, "member@example.org", inviter=owner) is False  # already invited
    assert organisations.invitations_for(member.id) == [org]
    assert organisations.organisations_of(member.id) == []
    row = organisations.membership(org, member.id)
    organisations.accept(row, user=member)
    accepted_at = row.accepted_at
    organisations.accept(row, user=member)
    assert row.accepted_at == accepted_at is not None
    assert organisations.invitations_for(member.id) == []
    assert organisations.organisations_of(member.id) == [org]
