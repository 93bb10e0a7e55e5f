"""Probes of redirects, sessions, tokens, OAuth and permissions that must keep passing."""
from __future__ import annotations

import time
from unittest import mock

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity, User
from tests.accounts.helpers import PASSWORD, csrf, finish_connect, link_in, login, signup, start_connect


@pytest.mark.parametrize("target", [
    "/%2509/evil.example", "/.//evil.example", "/%5C/evil.example", "\\\\evil.example", "/\u3000/evil.example",
    "http:/evil.example", "/\r\nSet-Cookie:x=1", "javascript:alert(1)", " //evil.example", "/%0d%0a//evil",
])
def test_more_next_variants_never_leave_the_site(client, session, target):
    signup(client, "ama@example.org")
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    location = login(client, "ama@example.org", next_path=target).headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert "evil" not in location.split("?")[0].split("/")[1:2][0] if location != "/" else True


def test_login_rotates_the_session_cookie_and_drops_pre_login_values(client, session):
    signup(client, "ama@example.org")
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    with client.session_transaction() as s:
        s["planted"] = "x"
        s["oauth_binding"] = "attacker-chosen"
    before = client.get_cookie("session").value
    login(client, "ama@example.org")
    with client.session_transaction() as s:
        assert "planted" not in s and s.get("oauth_binding") != "attacker-chosen"
    assert client.get_cookie("session").value != before


def test_cookie_flags(client, session):
    response = signup(client, "ama@example.org")
    header = response.headers.get("Set-Cookie")
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_logout_by_get_is_refused(client, session):
    signup(client, "ama@example.org")
    assert client.get("/logout").status_code == 405
    assert client.get("/account").status_code == 200


def test_x_forwarded_for_does_not_reset_the_rate_limit(app, session):
    from marketplace.extensions import limiter

    limiter.reset()
    app.config["RATELIMIT_AUTH"] = "3 per minute"
    try:
        client = app.test_client()
        codes = []
        for i in range(5):
            token = csrf(client)
            codes.append(client.post("/login", data={"email": "x@example.org", "password": "p", "csrf_token": token},
                                     headers={"X-Forwarded-For": f"10.0.0.{i}", "X-Real-IP": f"10.0.1.{i}"}
                                     ).status_code)
    finally:
        app.config["RATELIMIT_AUTH"] = "10000 per minute"
        limiter.reset()
    assert codes[-1] == 429, codes


def test_reset_token_is_not_an_email_token_and_vice_versa(app, client, session):
    from marketplace.accounts.tokens import make_email_token, make_reset_token

    signup(client, "ama@example.org")
    user = session.scalar(select(User))
    with app.test_request_context():
        reset, verify = make_reset_token(user), make_email_token(user, "ama@example.org")
    assert client.get(f"/verify/{reset}").status_code == 400
    assert client.get(f"/reset/{verify}").status_code == 400


def test_expired_verification_and_reset_links_are_refused(app, client, session):
    from marketplace.accounts.tokens import make_email_token, make_reset_token

    signup(client, "ama@example.org")
    user = session.scalar(select(User))
    with app.test_request_context():
        verify, reset = make_email_token(user, "ama@example.org"), make_reset_token(user)
    later = time.time() + 49 * 3600
    with mock.patch("time.time", return_value=later):
        assert client.get(f"/verify/{verify}").status_code == 400
        assert client.get(f"/reset/{reset}").status_code == 400


def test_verifying_an_address_another_account_took_meanwhile_is_refused(app, client, session, smtp_server):
    signup(client, "ama@example.org")
    token = csrf(client, "/account")
    client.post("/account", data={"form": "email", "email-email": "shared@example.org", "email-current": PASSWORD,
                                  "email-csrf_token": token, "csrf_token": token})
    for _ in range(100):
        if len(smtp_server) >= 2:
            break
        time.sleep(0.05)
    signup(app.test_client(), "SHARED@example.org", "Kofi")
    response = client.get(link_in(smtp_server[1]))
    assert response.status_code == 400
    assert session.scalar(select(func.count()).where(func.lower(User.email) == "shared@example.org")) == 1


def test_someone_elses_identity_cannot_be_removed(app, client, session, oauth_github):
    signup(client, "ama@example.org")
    finish_connect(client, oauth_github, start_connect(client), {"id": 4242, "login": "ama"})
    identity = session.scalar(select(ForgeIdentity))
    other = app.test_client()
    signup(other, "kofi@example.org", "Kofi")
    response = other.post(f"/account/identities/{identity.id}/remove", data={"csrf_token": csrf(other, "/account")})
    assert response.status_code == 404
    assert session.scalar(select(func.count()).select_from(ForgeIdentity)) == 1


def test_callback_for_the_wrong_provider_is_refused(app, client, session, oauth_github):
    app.config.update(GITLAB_OAUTH_CLIENT_ID="gl", GITLAB_OAUTH_CLIENT_SECRET="s", GITLAB_OAUTH_URL=oauth_github.url)
    try:
        signup(client, "ama@example.org")
        state = start_connect(client, "github")
        response = finish_connect(client, oauth_github, state, {"id": 1, "username": "x", "login": "x"},
                                  provider="gitlab")
    finally:
        app.config.update(GITLAB_OAUTH_CLIENT_ID=None, GITLAB_OAUTH_CLIENT_SECRET=None,
                          GITLAB_OAUTH_URL="https://gitlab.com")
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["x" * 10_000, "%ED%A0%80", "%FF%FE", "\U0001F600" * 300])
def test_long_and_odd_values_do_not_crash_signup(client, session, value):
    from urllib.parse import quote

    token = csrf(client, "/signup")
    raw = value if value.startswith("%") else quote(value)
    body = f"display_name={raw}&email={raw}%40example.org&password={raw}{raw}{raw}{raw}&csrf_token={token}"
    response = client.post("/signup", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (303, 400)
