"""Signing up, signing in and connecting forge accounts through the real pages."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

PASSWORD = "correct horse battery staple"


def csrf(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def signup(client, email: str, name: str = "Ama", *, verify: bool = True, sign_in: bool = True, **roles):
    """Sign up through the form; then (by default) open the verification link
    the mail would carry, and sign in. Returns the sign-up response."""
    from marketplace.accounts.service import user_by_email
    from marketplace.accounts.tokens import make_email_token

    data = {"display_name": name, "email": email, "password": PASSWORD, "csrf_token": csrf(client, "/signup")}
    data.update({f"is_{key}": "y" for key, value in roles.items() if value})
    response = client.post("/signup", data=data)
    with client.application.app_context():
        user = user_by_email(email)
        token = make_email_token(user, user.email) if user is not None and user.email_verified_at is None else None
    if verify and token:
        client.get(f"/verify/{token}")
    if sign_in:
        login(client, email)
    return response


def login(client, email: str, password: str = PASSWORD, next_path: str | None = None):
    query = {"next": next_path} if next_path is not None else {}
    return client.post("/login", query_string=query,
                       data={"email": email, "password": password, "csrf_token": csrf(client)})


def link_in(message) -> str:
    """The first http link in a received e-mail, as a path of this site."""
    body = message.get_content()
    url = re.search(r"https?://\S+", body).group(0)
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start_connect(client, provider: str = "github") -> str:
    """POST the "Connect" button; returns the state the provider received."""
    response = client.post(f"/connect/{provider}", data={"csrf_token": csrf(client, "/account")})
    assert response.status_code == 303, response.status_code
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def finish_connect(client, forge, state: str, user: dict, provider: str = "github", code: str | None = None):
    """The provider redirects back with a code standing for ``user``."""
    code = code or f"code-{state[:8]}-{user['id']}"
    forge.oauth_codes[code] = user
    return client.get(f"/connect/{provider}/callback", query_string={"code": code, "state": state})


def person(session, email, *, admin=False, verified=True):
    """An account (committed to the test's savepoint), confirmed unless ``verified=False``."""
    from marketplace.accounts.models import User
    from marketplace.timeutil import utcnow

    user = User(display_name=email.split("@")[0], is_admin=admin,
                email_verified_at=utcnow() if verified else None)
    user.set_email(email)
    session.add(user)
    session.commit()
    return user


def as_user(app, user):
    """A test client signed in as ``user``."""
    client = app.test_client()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
        flask_session["_fresh"] = True
    return client
