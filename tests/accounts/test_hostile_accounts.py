"""Accounts, identities and permissions under hostile use (found by a break test)."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity, ImplementorProfile, Organisation, User
from marketplace.backlog.models import (
    BacklogItem,
    ItemLink,
    ItemLinkKind,
    LinkSource,
    PullRequest,
    PullRequestState,
)
from marketplace.projects.models import MaintainerRequest, MemberProject, ProjectMaintainer
from marketplace.timeutil import utcnow
from tests.accounts.helpers import (
    PASSWORD,
    as_user,
    csrf,
    finish_connect,
    link_in,
    login,
    person,
    signup,
    start_connect,
)


def wait_for(messages, count=1):
    for _ in range(100):
        if len(messages) >= count:
            return messages
        time.sleep(0.05)
    raise AssertionError(f"{len(messages)} e-mails received, expected {count}")


class _Crashed:
    status_code = 500


def status_of(session, call):
    """The status a browser would see: an exception escaping the view (or the 500
    page itself failing on the broken transaction) counts as 500."""
    from flask import current_app

    previous = current_app.config.get("PROPAGATE_EXCEPTIONS")
    current_app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        return call()
    except Exception:  # noqa: BLE001
        return _Crashed()
    finally:
        current_app.config["PROPAGATE_EXCEPTIONS"] = previous
        session.rollback()


# --- 1. tokens ---------------------------------------------------------------------------

def test_old_verification_link_does_not_revert_a_changed_email(client, session, smtp_server):
    """The sign-up link for the OLD address still works after the address was changed:
    opening it switches the account back to the old address (which the holder of the
    old mailbox can then use for a password reset)."""
    signup(client, "ama@old.example", verify=False)
    first = link_in(wait_for(smtp_server, 1)[0])
    assert client.get(first).status_code == 302  # verified
    token = csrf(client, "/account")
    client.post("/account", data={"form": "email", "email-email": "ama@new.example", "email-current": PASSWORD,
                                  "email-csrf_token": token, "csrf_token": token})
    client.get(link_in(wait_for(smtp_server, 2)[1]))
    user = session.scalar(select(User).where(User.email == "ama@new.example"))
    assert user is not None
    # Whoever reads the old mailbox opens the old link again, without being signed in:
    response = client.application.test_client().get(first)
    session.refresh(user)
    assert user.email == "ama@new.example", f"email reverted to {user.email!r} (status {response.status_code})"


def test_pending_email_change_link_survives_a_later_change(client, session, smtp_server):
    """Two changes requested: the link of the first (superseded) request still applies."""
    signup(client, "ama@example.org")
    token = csrf(client, "/account")
    for address in ("typo@exampel.org", "ama@new.example"):
        client.post("/account", data={"form": "email", "email-email": address, "email-current": PASSWORD,
                                      "email-csrf_token": token, "csrf_token": token})
    messages = wait_for(smtp_server, 3)
    client.get(link_in(messages[2]))  # the intended change
    client.application.test_client().get(link_in(messages[1]))  # the typo'd mailbox's owner
    user = session.scalar(select(User).where(func.lower(User.display_name) == "ama"))
    assert user.email == "ama@new.example", user.email


# --- 2. OAuth: odd provider answers, sizes --------------------------------------------------

@pytest.mark.parametrize("odd_user", [
    ["not", "an", "object"],
    "a JSON string",
    {"id": 2 ** 63, "login": "huge-id"},
    {"id": 5, "login": "nul\x00login"},
], ids=["list", "string", "id-overflows-bigint", "nul-in-login"])
def test_odd_user_json_from_provider_is_a_400_not_a_500(app, client, session, oauth_github, odd_user):
    signup(client, "ama@example.org")
    state = start_connect(client)
    response = status_of(session, lambda: finish_connect(client, oauth_github, state, odd_user, code="odd-code"))
    assert response.status_code == 400, response.status_code
    assert session.scalar(select(func.count()).select_from(ForgeIdentity)) == 0


# --- 3. claims: permission asked by a stale handle -----------------------------------------

def test_claim_uses_the_stale_handle_and_borrows_a_newcomers_admin_rights(app, session, github_forge):
    """Ama connected as "ama" (id 777), then renamed on GitHub; a newcomer (id 999)
    took "ama" and administers getodk/central. The claim asks GitHub about the
    handle "ama", gets the newcomer's "admin", and records it as Ama's (id 777)."""
    ama = person(session, "ama@example.org")
    session.add(ForgeIdentity(user=ama, forge="github", host="github.com", forge_user_id=777, login="ama"))
    session.commit()
    odk = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
    central = next(r for r in odk.repositories if r.name == "central")
    # GitHub now: the handle "ama" belongs to id 999, who is an admin.
    github_forge.repos[("getodk", "central")] = {"id": 1, "issues": [], "pulls": [],
                                                 "permissions": {"ama": "admin"}}
    client = as_user(app, ama)
    client.post("/projects/odk/maintainers/request", data={"csrf_token": csrf(client, "/projects/odk/maintainers"),
                                             "repository_id": str(central.id)})
    claims = session.scalars(select(MaintainerRequest)).all()
    assert claims == [], [c.evidence for c in claims]


# --- 4. input: NUL, whitespace-only selects -------------------------------------------------

def test_login_with_nul_in_email_is_not_a_500(app, client, session):
    response = status_of(session, lambda: client.post("/login", data={"email": "a\x00@example.org", "password": "whatever-password",
                                               "csrf_token": csrf(client)}))
    assert response.status_code == 400, response.status_code


def test_signup_with_nul_in_name_is_not_a_500(app, client, session):
    response = status_of(session, lambda: client.post("/signup", data={"display_name": "Ama\x00", "email": "ama@example.org",
                                                "password": PASSWORD, "csrf_token": csrf(client, "/signup")}))
    assert response.status_code == 400, response.status_code


def test_profile_bio_with_nul_is_not_a_500(app, client, session):
    signup(client, "ama@example.org", implementor=True)
    response = status_of(session, lambda: client.post("/account/profile", data={"csrf_token": csrf(client, "/account/profile"),
                                                         "bio": "hello\x00world"}))
    assert response.status_code == 400, response.status_code


def test_organisation_name_with_nul_is_not_a_500(app, client, session):
    signup(client, "ama@example.org")
    response = status_of(session, lambda: client.post("/organisations/new", data={"csrf_token": csrf(client, "/organisations/new"),
                                                           "name": "Acme\x00", "kind": "funder"}))
    assert response.status_code == 400, response.status_code


@pytest.mark.parametrize("field, value", [("country", "   "), ("organisation_id", " ")])
def test_profile_whitespace_only_select_is_refused_not_a_500(app, client, session, field, value):
    """Optional() clears the "not a valid choice" error for a blank-looking value."""
    signup(client, "ama@example.org", implementor=True)
    data = {"csrf_token": csrf(client, "/account/profile"), "country": "", "organisation_id": ""}
    data[field] = value
    response = status_of(session, lambda: client.post("/account/profile", data=data))
    assert response.status_code == 400, response.status_code


def test_profile_country_two_spaces_is_not_stored(client, session):
    signup(client, "ama@example.org", implementor=True)
    client.post("/account/profile", data={"csrf_token": csrf(client, "/account/profile"), "country": "  "})
    row = session.scalar(select(ImplementorProfile))
    assert row is None or row.country in (None, ""), repr(row.country)


def test_organisation_country_whitespace_is_refused_not_a_500(app, client, session):
    signup(client, "ama@example.org")
    response = status_of(session, lambda: client.post("/organisations/new", data={"csrf_token": csrf(client, "/organisations/new"),
                                                           "name": "Acme", "kind": "funder", "country": "   "}))
    assert response.status_code == 400, response.status_code


# --- 5. e-mail case folding: Python lower() vs SQL lower() ----------------------------------

def test_account_with_dotted_capital_i_can_sign_in_and_is_not_duplicated(app, client, session):
    """Python lowers "İ" to "i̇" (two code points), PostgreSQL to "i": the account
    can never be found by its own address."""
    email = "İnci@example.org"
    assert signup(client, email, "Inci").status_code == 303
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    assert login(client, email).status_code == 303, "cannot sign in with the address used at sign-up"


def test_second_signup_with_dotted_capital_i_makes_no_second_account(app, session):
    email = "İnci@example.org"
    first = signup(app.test_client(), email, "Inci", verify=False, sign_in=False)
    again = status_of(session, lambda: signup(app.test_client(), email, "Inci again", verify=False, sign_in=False))
    assert again.status_code == first.status_code == 303
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_unicode_normalisation_variants_are_one_address(app, session):
    nfc, nfd = "jos\u00e9@example.org", "jose\u0301@example.org"
    assert signup(app.test_client(), nfc, "Jose", verify=False, sign_in=False).status_code == 303
    signup(app.test_client(), nfd, "Jose twin", verify=False, sign_in=False)
    assert session.scalar(select(func.count()).select_from(User)) == 1, "NFC and NFD spellings are one mailbox"


# --- 6. enumeration ---------------------------------------------------------------------------

def test_signup_does_not_reveal_that_an_address_has_an_account(app, client, session):
    signup(client, "ama@example.org")
    known = signup(app.test_client(), "ama@example.org", "X")
    unknown = signup(app.test_client(), "nobody-yet@example.org", "X")
    assert known.status_code == unknown.status_code, (known.status_code, unknown.status_code)


# --- 7. sessions ------------------------------------------------------------------------------

def test_logout_ends_the_session_server_side(app, client, session):
    """The session is a signed cookie: a copy taken before logout still works after it."""
    signup(client, "ama@example.org")
    cookie = client.get_cookie("session").value
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    replay = app.test_client()
    replay.set_cookie("session", cookie, domain="localhost")
    assert replay.get("/account").status_code == 302, "a session cookie copied before logout still signs in"


def test_production_config_sets_secure_cookies_by_default(monkeypatch):
    from marketplace import create_app

    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("SECRET_KEY", "production-like")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SESSION_COOKIE_SECURE"] is False


# --- 8. object-level: links across projects ----------------------------------------------------

def _cross_project_link(session):
    odk = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
    opencrvs = session.scalar(select(MemberProject).where(MemberProject.slug == "opencrvs"))
    odk_item = session.scalar(select(BacklogItem).where(BacklogItem.number == 1887))  # getodk/central
    crvs_repo = next(r for r in opencrvs.repositories)
    crvs_item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == crvs_repo.id).limit(1))
    pull = PullRequest(repository=odk_item.repository, forge_host="github.com", number=99002, title="t",
                       state=PullRequestState.merged, merged_at=utcnow(),
                       html_url="https://github.com/getodk/central/pull/99002",
                       forge_created_at=utcnow(), forge_updated_at=utcnow())
    pull.links.append(ItemLink(target_host="github.com", target_path=crvs_repo.full_name,
                               target_number=crvs_item.number, kind=ItemLinkKind.cross_project,
                               source=LinkSource.keyword, item=crvs_item))
    session.add(pull)
    session.commit()
    return odk, opencrvs, crvs_item, pull.links[0]


def test_maintainer_of_the_pull_project_cannot_remove_a_link_on_another_projects_item(app, session):
    odk, opencrvs, crvs_item, link = _cross_project_link(session)
    odk_maintainer = person(session, "odk-m@example.org")
    session.add(ProjectMaintainer(project=odk, user=odk_maintainer, granted_by="test"))
    session.commit()
    client = as_user(app, odk_maintainer)
    response = client.post(f"/links/{link.id}/remove", data={"csrf_token": csrf(client, "/account")})
    session.refresh(link)
    assert response.status_code == 403 and not link.removed, (response.status_code, link.removed)


def test_maintainer_of_the_items_project_who_sees_remove_button_may_use_it(app, session):
    odk, opencrvs, crvs_item, link = _cross_project_link(session)
    crvs_maintainer = person(session, "crvs-m@example.org")
    session.add(ProjectMaintainer(project=opencrvs, user=crvs_maintainer, granted_by="test"))
    session.commit()
    client = as_user(app, crvs_maintainer)
    page = client.get(f"/items/{crvs_item.id}").get_data(as_text=True)
    shows_button = f"/links/{link.id}/remove" in page
    response = client.post(f"/links/{link.id}/remove", data={"csrf_token": csrf(client, "/account")})
    assert not (shows_button and response.status_code == 403), "button shown, action refused with 403"


# --- 9. pre-verification hijack ---------------------------------------------------------------

def test_unverified_account_cannot_connect_a_forge_identity(client, session, oauth_github):
    """Someone signs up with another person's address (never verified) and connects a
    GitHub account; when the real owner takes the account over by a reset link the
    squatter's identity is still attached."""
    signup(client, "victim@example.org", verify=False)
    response = client.post("/connect/github", data={"csrf_token": csrf(client, "/account")})
    assert response.headers["Location"] == "/account"  # not to the provider
    assert "Confirm your e-mail address first" in client.get("/account").get_data(as_text=True)
    assert session.scalars(select(ForgeIdentity.login)).all() == []


def test_reset_link_sent_to_the_old_address_dies_with_the_email_change(client, session, smtp_server):
    """A reset link mailed to the old address (fingerprint: password hash and session
    version only) still resets the password after the address was changed."""
    signup(client, "ama@old.example")
    requester = client.application.test_client()
    requester.post("/reset", data={"email": "ama@old.example", "csrf_token": csrf(requester, "/reset")})
    reset_link = link_in(wait_for(smtp_server, 2)[1])
    token = csrf(client, "/account")
    client.post("/account", data={"form": "email", "email-email": "ama@new.example", "email-current": PASSWORD,
                                  "email-csrf_token": token, "csrf_token": token})
    client.get(link_in(wait_for(smtp_server, 3)[2]))
    assert session.scalar(select(User.email)) == "ama@new.example"
    old_mailbox = client.application.test_client()
    assert old_mailbox.get(reset_link).status_code == 400, "the old mailbox can still reset the password"


# --- 10. organisations ------------------------------------------------------------------------

def test_organisation_named_new_gets_a_reachable_page(client, session):
    signup(client, "ama@example.org")
    response = client.post("/organisations/new", data={"csrf_token": csrf(client, "/organisations/new"),
                                                       "name": "New", "kind": "funder"})
    location = response.headers["Location"]
    page = client.get(location).get_data(as_text=True)
    org = session.scalar(select(Organisation).where(Organisation.name == "New"))
    assert 'name="name"' not in page, (location, org.slug, "the creation form is shown instead of the organisation")


def test_nobody_is_enrolled_unasked_and_the_answer_names_no_one(app, client, session):
    """Anyone signed in creates an organisation and 'adds' any address: the answer
    names the account holder (or says no account uses it), and the person becomes
    a member without being asked."""
    victim = app.test_client()
    signup(victim, "secret.person@example.org", "Secret Person")
    signup(client, "mallory@example.org", "Mallory")
    client.post("/organisations/new", data={"csrf_token": csrf(client, "/organisations/new"),
                                            "name": "Scam Ltd", "kind": "implementor"})
    response = client.post("/organisations/scam-ltd", data={"csrf_token": csrf(client, "/organisations/scam-ltd"),
                                                            "email": "secret.person@example.org"},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    org = session.scalar(select(Organisation).where(Organisation.slug == "scam-ltd"))
    members = {m.user.email for m in org.members if m.accepted_at is not None}
    assert "Secret Person" not in page and "secret.person@example.org" not in members, (
        "name disclosed and membership added without consent")
    unknown = client.post("/organisations/scam-ltd", data={"csrf_token": csrf(client, "/organisations/scam-ltd"),
                                                           "email": "nobody@example.org"}, follow_redirects=True)
    assert without_csrf_tokens(page.replace("secret.person", "nobody")) == \
        without_csrf_tokens(unknown.get_data(as_text=True))


def without_csrf_tokens(html: str) -> str:
    """``html`` with its CSRF fields blanked: a token carries the second it was made in,
    so two answers a second apart differ there and nowhere else."""
    return re.sub(r'<input[^>]*name="csrf_token"[^>]*>', "<input csrf>", html)


def test_sign_in_checks_a_password_hash_for_unknown_addresses_too(app, session, monkeypatch):
    """Otherwise the answer comes faster for addresses without an account."""
    from marketplace.accounts import service

    checked = []
    real = service.check_password_hash
    monkeypatch.setattr(service, "check_password_hash", lambda *a: checked.append(1) or real(*a))
    assert service.authenticate("nobody@example.org", "whatever password") is None
    assert checked == [1]
