"""Maintainership: admission, naming, invitations by e-mail, claims by repository admins."""
import re
import time

from sqlalchemy import select

from marketplace.accounts.models import ForgeIdentity
from marketplace.audit.models import AuditEvent
from marketplace.projects.models import MaintainerRequest, MemberProject, ProjectMaintainer
from marketplace.projects.service import is_maintainer
from tests.accounts.helpers import as_user, csrf, link_in, person


def odk(session):
    return session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))


def wait_for(messages, count=1):
    for _ in range(50):
        if len(messages) >= count:
            return messages
        time.sleep(0.05)
    raise AssertionError("no e-mail")


def test_admin_admits_a_project_and_names_its_maintainer(app, session):
    admin = person(session, "host@example.org", admin=True)
    ama = person(session, "ama@example.org")
    client = as_user(app, admin)
    token = csrf(client, "/admin/projects?q=odk")
    assert client.post("/admin/projects/odk/admit", data={"csrf_token": token}).status_code == 303
    assert client.post("/admin/projects/odk/maintainers",
                       data={"csrf_token": token, "email": "AMA@example.org"}).status_code == 303
    project = odk(session)
    assert project.admitted_at is not None
    assert is_maintainer(ama, project)
    html = client.get("/admin/projects?q=odk").get_data(as_text=True)
    assert "ODK" in html and "1 result" in html
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.actor == f"user:{admin.id}")).all()
    assert {"project.admitted", "project.maintainer_added"} <= set(actions)


def test_a_maintainer_invites_a_co_maintainer_who_accepts_from_the_mail(app, session, smtp_server):
    maintainer = person(session, "ama@example.org")
    session.add(ProjectMaintainer(project=odk(session), user=maintainer, granted_by="test"))
    kofi = person(session, "kofi@example.org")
    client = as_user(app, maintainer)
    token = csrf(client, "/projects/odk/maintainers")
    assert client.post("/projects/odk/maintainers/invite",
                       data={"csrf_token": token, "email": "kofi@example.org"}).status_code == 303
    message = wait_for(smtp_server)[0]
    assert message["To"] == "kofi@example.org"
    link = link_in(message)
    # Someone else who opens the link cannot use it.
    intruder = as_user(app, person(session, "intruder@example.org"))
    response = intruder.post(link, data={"csrf_token": csrf(intruder, link)})
    assert response.status_code == 400
    assert "This invitation is for kofi@example.org" in response.get_data(as_text=True)
    kofi_client = as_user(app, kofi)
    assert kofi_client.post(link, data={"csrf_token": csrf(kofi_client, link)}).status_code == 303
    assert is_maintainer(kofi, odk(session))
    # Used: a second acceptance is refused.
    again = kofi_client.post(link, data={"csrf_token": csrf(kofi_client, link)})
    assert "was used already" in again.get_data(as_text=True)


def test_a_maintainer_of_another_project_cannot_invite_here(app, session):
    other = person(session, "other@example.org")
    opencrvs = session.scalar(select(MemberProject).where(MemberProject.slug == "opencrvs"))
    session.add(ProjectMaintainer(project=opencrvs, user=other, granted_by="test"))
    session.commit()
    client = as_user(app, other)
    token = csrf(client, "/projects/odk/maintainers")
    response = client.post("/projects/odk/maintainers/invite", data={"csrf_token": token, "email": "x@example.org"})
    assert response.status_code == 403


def test_a_repository_admin_claims_maintainership_and_an_admin_confirms(app, session, github_forge):
    ama = person(session, "ama@example.org")
    session.add(ForgeIdentity(user=ama, forge="github", host="github.com", forge_user_id=583231, login="ama-codes"))
    session.commit()
    project = odk(session)
    central = next(r for r in project.repositories if r.name == "central")
    github_forge.repos[("getodk", "central")] = {"id": 1, "issues": [], "pulls": [],
                                                 "permissions": {"ama-codes": "admin", "kofi": "write"},
                                                 "user_ids": {"ama-codes": 583231, "kofi": 99}}
    client = as_user(app, ama)
    token = csrf(client, "/projects/odk/maintainers")
    assert client.post("/projects/odk/maintainers/request", data={"csrf_token": token, "repository_id": str(central.id)}
                       ).status_code == 303
    claim = session.scalars(select(MaintainerRequest)).one()
    assert claim.status == "requested"
    assert claim.evidence == "GitHub permission of ama-codes (id 583231) on getodk/central: admin"
    assert not is_maintainer(ama, project)  # not before an admin confirms
    admin_client = as_user(app, person(session, "host@example.org", admin=True))
    assert admin_client.post(f"/admin/maintainer-requests/{claim.id}/confirm",
                             data={"csrf_token": csrf(admin_client, "/admin/maintainer-requests")}).status_code == 303
    assert is_maintainer(ama, project)


def test_a_claim_without_admin_rights_is_refused(app, session, github_forge):
    kofi = person(session, "kofi@example.org")
    session.add(ForgeIdentity(user=kofi, forge="github", host="github.com", forge_user_id=99, login="kofi"))
    session.commit()
    central = next(r for r in odk(session).repositories if r.name == "central")
    github_forge.repos[("getodk", "central")] = {"id": 1, "issues": [], "pulls": [], "permissions": {"kofi": "write"},
                                                 "user_ids": {"kofi": 99}}
    client = as_user(app, kofi)
    response = client.post("/projects/odk/maintainers/request", data={"csrf_token": csrf(client, "/projects/odk/maintainers"),
                                                        "repository_id": str(central.id)}, follow_redirects=True)
    assert "Your GitHub account kofi does not administer getodk/central." in response.get_data(as_text=True)
    assert session.scalars(select(MaintainerRequest)).all() == []


def test_organisation_owner_adds_members_and_others_cannot(app, session):
    owner = person(session, "owner@example.org")
    member = person(session, "member@example.org")
    client = as_user(app, owner)
    response = client.post("/organisations/new", data={"csrf_token": csrf(client, "/organisations/new"),
                                                       "name": "Accra Devs Ltd", "kind": "implementor",
                                                       "country": "GH"})
    assert response.headers["Location"] == "/organisations/accra-devs-ltd"
    client.post("/organisations/accra-devs-ltd", data={"csrf_token": csrf(client, "/organisations/accra-devs-ltd"),
                                                       "email": "member@example.org"})
    page = client.get("/organisations/accra-devs-ltd").get_data(as_text=True)
    # Names link to a profile only for implementors (issue 23: no public page for others).
    assert re.search(r"<li>owner \(owner\)</li>", page) and "<li>member" not in page  # not before accepting
    joiner = as_user(app, member)
    assert "Accra Devs Ltd" in joiner.get("/account").get_data(as_text=True)
    joiner.post("/organisations/accra-devs-ltd/accept", data={"csrf_token": csrf(joiner, "/account")})
    page = client.get("/organisations/accra-devs-ltd").get_data(as_text=True)
    assert "<li>member</li>" in page
    stranger = as_user(app, member)
    response = stranger.post("/organisations/accra-devs-ltd",
                             data={"csrf_token": csrf(stranger, "/organisations/accra-devs-ltd"),
                                   "email": "someone@example.org"})
    assert response.status_code == 403


def test_admin_lists_are_searchable(app, session):
    admin = person(session, "host@example.org", admin=True)
    person(session, "ama.mensah@example.org")
    client = as_user(app, admin)
    html = client.get("/admin/users?q=mensah").get_data(as_text=True)
    assert "ama.mensah@example.org" in html and "1 result" in html
    client.post("/admin/projects/odk/admit", data={"csrf_token": csrf(client, "/admin/projects")})
    audit = client.get("/admin/audit?q=project.admitted").get_data(as_text=True)
    assert "project.admitted" in audit and f"user:{admin.id}" in audit
    # A "%" is searched for literally, not as a wildcard.
    assert "0 results" in client.get("/admin/users?q=%25").get_data(as_text=True)
