"""Sign-up to a verified forge identity, through the pages, a real SMTP server
and a local OAuth provider."""
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity, OAuthState, User
from marketplace.timeutil import utcnow
from tests.accounts.helpers import PASSWORD, csrf, finish_connect, link_in, login, signup, start_connect


def wait_for(messages, count: int = 1):
    for _ in range(50):
        if len(messages) >= count:
            return messages
        time.sleep(0.05)
    raise AssertionError(f"{len(messages)} e-mails received, expected {count}")


def test_sign_up_verify_connect_github_and_see_it_on_the_profile(client, session, smtp_server, oauth_github):
    response = signup(client, "ama@example.org", "Ama Mensah", implementor=True, verify=False, sign_in=False)
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    user = session.scalar(select(User).where(User.email == "ama@example.org"))
    assert user.is_implementor and not user.is_funder and user.email_verified_at is None
    message = wait_for(smtp_server)[0]
    assert message["To"] == "ama@example.org"
    assert message["Subject"] == "Confirm your e-mail address for Backlog Commons"
    assert "http://localhost/verify/" in message.get_content()
    assert client.get(link_in(message)).status_code == 302
    session.refresh(user)
    assert user.email_verified_at is not None
    assert login(client, "ama@example.org").status_code == 303

    state = start_connect(client)
    callback = finish_connect(client, oauth_github, state, {"id": 583231, "login": "ama-codes"})
    assert callback.status_code == 302
    identity = session.scalar(select(ForgeIdentity).where(ForgeIdentity.user_id == user.id))
    assert (identity.host, identity.forge_user_id, identity.login) == ("github.com", 583231, "ama-codes")
    page = client.get(f"/people/{user.id}").get_data(as_text=True)
    assert "GitHub: ama-codes" in page


@pytest.mark.parametrize(
    "target, expected",
    [
        ("https://evil.example/p", "/"),
        ("//evil.example", "/"),
        ("////evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\tevil.example", "/"),  # "/%09/evil.example" arrives decoded
        ("/%09/evil.example", "/"),
        ("https:evil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/items/42?tab=history", "/items/42?tab=history"),
    ],
)
def test_login_follows_next_only_to_paths_of_this_site(client, session, target, expected):
    signup(client, "ama@example.org")
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    response = login(client, "ama@example.org", next_path=target)
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_raw_query_string_next_variants_are_not_followed(client, session):
    signup(client, "ama@example.org")
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    for raw in ("next=/%09/evil.example", "next=%2F%2Fevil.example", "next=/%5Cevil.example"):
        token = csrf(client)
        response = client.post(f"/login?{raw}", data={"email": "ama@example.org", "password": PASSWORD,
                                                        "csrf_token": token})
        assert response.headers["Location"] == "/", raw
        client.post("/logout", data={"csrf_token": csrf(client, "/account")})


def _oauth_states(session) -> int:
    return session.scalar(select(func.count()).select_from(OAuthState))


def test_oauth_state_of_another_session_is_refused(app, client, session, oauth_github):
    signup(client, "ama@example.org")
    state = start_connect(client)
    other = app.test_client()
    signup(other, "kofi@example.org", "Kofi")
    response = finish_connect(other, oauth_github, state, {"id": 1001, "login": "kofi"})
    assert response.status_code == 400
    assert session.scalar(select(func.count()).select_from(ForgeIdentity)) == 0


def test_oauth_state_used_twice_is_refused_the_second_time(client, session, oauth_github):
    signup(client, "ama@example.org")
    state = start_connect(client)
    assert finish_connect(client, oauth_github, state, {"id": 1001, "login": "ama"}).status_code == 302
    again = finish_connect(client, oauth_github, state, {"id": 2002, "login": "mallory"}, code="another-code")
    assert again.status_code == 400
    logins = session.scalars(select(ForgeIdentity.login)).all()
    assert logins == ["ama"]


def test_expired_oauth_state_is_refused(client, session, oauth_github):
    signup(client, "ama@example.org")
    state = start_connect(client)
    row = session.scalars(select(OAuthState)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert finish_connect(client, oauth_github, state, {"id": 1001, "login": "ama"}).status_code == 400
    assert session.scalar(select(func.count()).select_from(ForgeIdentity)) == 0


def test_two_accounts_cannot_connect_the_same_github_user(app, client, session, oauth_github):
    signup(client, "ama@example.org")
    finish_connect(client, oauth_github, start_connect(client), {"id": 777, "login": "ama"})
    other = app.test_client()
    signup(other, "kofi@example.org", "Kofi")
    response = finish_connect(other, oauth_github, start_connect(other), {"id": 777, "login": "ama"})
    assert response.status_code == 400
    assert ("This Github account is already connected to another Backlog Commons account."
            in response.get_data(as_text=True))
    owners = session.scalars(select(User.email).join(ForgeIdentity)).all()
    assert owners == ["ama@example.org"]


def test_renamed_handle_follows_the_id_and_a_newcomer_with_the_old_handle_gets_nothing(
        app, client, session, oauth_github):
    signup(client, "ama@example.org")
    finish_connect(client, oauth_github, start_connect(client), {"id": 777, "login": "ama"})
    # Ama renames her GitHub account; she reconnects.
    finish_connect(client, oauth_github, start_connect(client), {"id": 777, "login": "ama-mensah"})
    # Someone else registers the freed handle "ama" on GitHub (a new id).
    other = app.test_client()
    signup(other, "newcomer@example.org", "Newcomer")
    finish_connect(other, oauth_github, start_connect(other), {"id": 999, "login": "ama"})
    rows = session.execute(select(User.email, ForgeIdentity.forge_user_id, ForgeIdentity.login)
                           .join(ForgeIdentity).order_by(ForgeIdentity.forge_user_id)).all()
    assert rows == [("ama@example.org", 777, "ama-mensah"), ("newcomer@example.org", 999, "ama")]


def test_profile_change_without_csrf_token_is_refused(client, session):
    signup(client, "ama@example.org", implementor=True)
    user = session.scalar(select(User).where(User.email == "ama@example.org"))
    response = client.post("/account/profile", data={"country": "GH", "skills": "django"})
    assert response.status_code == 400
    assert user.profile is None
    response = client.post("/account", data={"form": "roles", "roles-display_name": "Hacked",
                                             "roles-is_funder": "y"})
    assert response.status_code == 400
    session.refresh(user)
    assert user.display_name == "Ama" and user.is_funder is False


def test_profile_is_saved_and_shown(client, session):
    signup(client, "ama@example.org", implementor=True)
    token = csrf(client, "/account/profile")
    response = client.post("/account/profile", data={
        "csrf_token": token, "country": "GH", "organisation_id": "", "skills": "django, postgres",
        "languages": "en, tw", "bio": "Builds **DHIS2** apps <script>x</script>", "public_earnings": "y"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ghana" in page and "django, postgres" in page and "<strong>DHIS2</strong>" in page
    assert "<script>x</script>" not in page


def test_password_reset_link_works_once_and_ends_other_sessions(app, client, session, smtp_server):
    signup(client, "ama@example.org")
    other_device = app.test_client()
    login(other_device, "ama@example.org")
    assert other_device.get("/account").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    # Signing out ended every session; the other device signs in again.
    login(other_device, "ama@example.org")
    client.post("/reset", data={"email": "AMA@example.org", "csrf_token": csrf(client, "/reset")})
    reset_mail = wait_for(smtp_server, 2)[1]
    assert reset_mail["Subject"] == "Reset your Backlog Commons password"
    link = link_in(reset_mail)
    new_password = "another long passphrase"
    token = csrf(client, link)
    response = client.post(link, data={"password": new_password, "confirm": new_password, "csrf_token": token})
    assert response.status_code == 303
    assert client.get(link).status_code == 400  # used
    assert other_device.get("/account").status_code == 302  # signed out
    assert login(app.test_client(), "ama@example.org", new_password).status_code == 303


def test_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, session, smtp_server):
    response = client.post("/reset", data={"email": "nobody@example.org", "csrf_token": csrf(client, "/reset")})
    assert response.status_code == 303
    time.sleep(0.2)
    assert smtp_server == []


def test_password_change_keeps_this_session_and_ends_the_others(app, client, session):
    signup(client, "ama@example.org")
    other_device = app.test_client()
    login(other_device, "ama@example.org")
    token = csrf(client, "/account")
    response = client.post("/account", data={
        "form": "password", "password-current": PASSWORD, "password-password": "a brand new passphrase",
        "password-confirm": "a brand new passphrase", "password-csrf_token": token, "csrf_token": token})
    assert response.status_code == 303
    assert client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 302


def test_password_change_with_a_wrong_current_password_changes_nothing(app, client, session):
    signup(client, "ama@example.org")
    other_device = app.test_client()
    login(other_device, "ama@example.org")
    user = session.scalar(select(User).where(User.email == "ama@example.org"))
    hash_before = user.password_hash
    token = csrf(client, "/account")
    response = client.post("/account", data={
        "form": "password", "password-current": "not my password at all", "password-password": "a brand new passphrase",
        "password-confirm": "a brand new passphrase", "password-csrf_token": token, "csrf_token": token})
    assert response.status_code == 400
    assert "The current password is not right." in response.get_data(as_text=True)
    session.refresh(user)
    assert user.password_hash == hash_before
    assert other_device.get("/account").status_code == 200  # no session was ended
    assert login(app.test_client(), "ama@example.org", "a brand new passphrase").status_code == 400
    assert login(app.test_client(), "ama@example.org").status_code == 303


def test_email_change_with_a_wrong_current_password_sends_nothing_and_changes_nothing(client, session, smtp_server):
    signup(client, "ama@example.org", verify=False, sign_in=False)
    client.get(link_in(wait_for(smtp_server, 1)[0]))
    login(client, "ama@example.org")
    user = session.scalar(select(User).where(User.email == "ama@example.org"))
    version_before = user.email_token_version
    token = csrf(client, "/account")
    response = client.post("/account", data={"form": "email", "email-email": "thief@evil.example",
                                             "email-current": "not my password at all",
                                             "email-csrf_token": token, "csrf_token": token})
    assert response.status_code == 400
    assert "The current password is not right." in response.get_data(as_text=True)
    time.sleep(0.3)
    assert [m["To"] for m in smtp_server] == ["ama@example.org"]  # the sign-up mail only
    session.refresh(user)
    assert (user.email, user.email_token_version) == ("ama@example.org", version_before)


def test_email_change_takes_effect_from_the_link_sent_to_the_new_address(client, session, smtp_server):
    signup(client, "ama@example.org")
    token = csrf(client, "/account")
    client.post("/account", data={"form": "email", "email-email": "ama@new.example", "email-current": PASSWORD,
                                  "email-csrf_token": token, "csrf_token": token})
    messages = wait_for(smtp_server, 2)
    assert messages[1]["To"] == "ama@new.example"
    user = session.scalar(select(User).where(User.email == "ama@example.org"))
    client.get(link_in(messages[1]))
    session.refresh(user)
    assert user.email == "ama@new.example" and user.email_verified_at is not None


def test_sign_up_twice_with_one_address_makes_one_account_and_tells_only_its_owner(
        app, client, session, smtp_server):
    first = signup(client, "ama@example.org", verify=False, sign_in=False)
    second = signup(app.test_client(), "AMA@Example.org", "Other", verify=False, sign_in=False)
    assert (first.status_code, first.headers["Location"]) == (second.status_code, second.headers["Location"])
    assert session.scalar(select(func.count()).select_from(User)) == 1
    messages = wait_for(smtp_server, 2)
    assert [m["To"] for m in messages] == ["ama@example.org", "ama@example.org"]
    assert messages[1]["Subject"] == "Someone tried to create a Backlog Commons account with your address"


def test_login_is_rate_limited(app, session):
    app.config["RATELIMIT_AUTH"] = "3 per minute"
    try:
        client = app.test_client()
        codes = [login(client, "nobody@example.org", "wrong password!!").status_code for _ in range(4)]
    finally:
        app.config["RATELIMIT_AUTH"] = "10000 per minute"
    assert codes == [400, 400, 400, 429]


def test_connect_gitlab_through_its_oauth_endpoints(app, client, session, gitlab_forge):
    app.config.update(GITLAB_OAUTH_CLIENT_ID="gl-client", GITLAB_OAUTH_CLIENT_SECRET="gl-secret",
                      GITLAB_OAUTH_URL=gitlab_forge.url.removesuffix("/api/v4"))
    try:
        signup(client, "ama@example.org")
        state = start_connect(client, "gitlab")
        response = finish_connect(client, gitlab_forge, state, {"id": 3141, "username": "ama.gl"}, provider="gitlab")
    finally:
        app.config.update(GITLAB_OAUTH_CLIENT_ID=None, GITLAB_OAUTH_CLIENT_SECRET=None,
                          GITLAB_OAUTH_URL="https://gitlab.com")
    assert response.status_code == 302
    identity = session.scalars(select(ForgeIdentity)).one()
    assert (identity.forge, identity.host, identity.forge_user_id, identity.login) == (
        "gitlab", "127.0.0.1", 3141, "ama.gl")
    paths = [r.path for r in gitlab_forge.received]
    assert paths == ["/oauth/token", "/api/v4/user"]


def test_a_code_the_provider_refuses_links_nothing(client, session, oauth_github):
    signup(client, "ama@example.org")
    state = start_connect(client)
    response = client.get("/connect/github/callback", query_string={"code": "never-issued", "state": state})
    assert response.status_code == 400
    assert session.scalar(select(func.count()).select_from(ForgeIdentity)) == 0


def test_without_mail_server_the_mail_is_named_in_the_log_without_its_link(app, client, session, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger=app.logger.name):
        signup(client, "ama.with.a.rather.long.address@example.org", verify=False, sign_in=False)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "e-mail to ama.with.a.rather.long.address@example.org not sent" in logged
    # Issue 23: a verification link in a log file is a secret at rest.
    assert "/verify/" not in logged
