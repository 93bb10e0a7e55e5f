"""Connecting a forge account by OAuth 2 (authorization code), with Authlib's client.

GitHub: ``{GITHUB_OAUTH_URL}/login/oauth/authorize`` and ``…/access_token``,
then ``GET {GITHUB_API_URL}/user``. GitLab: ``{GITLAB_OAUTH_URL}/oauth/authorize``
and ``…/oauth/token``, then ``GET {GITLAB_OAUTH_URL}/api/v4/user``.

The ``state`` is ours: random, stored hashed with the browser session it was
issued to, valid ten minutes, and used at most once (a conditional update).
"""
from __future__ import annotations

import hashlib
import secrets
import warnings
from datetime import timedelta
from urllib.parse import urlsplit

import authlib.deprecate  # noqa: F401  (it installs an "always" filter of its own on import)

# Authlib prefers the httpx2 package and warns when it falls back to httpx,
# which the rest of the application uses; the fallback works.
warnings.filterwarnings("ignore", message="The httpx module is deprecated")
from authlib.integrations.httpx_client import OAuth2Client  # noqa: E402
from flask import current_app, session  # noqa: E402
from sqlalchemy import update  # noqa: E402

from marketplace.accounts.models import OAuthState  # noqa: E402
from marketplace.extensions import db  # noqa: E402
from marketplace.timeutil import utcnow  # noqa: E402
from marketplace.validation import InvalidText, check_text  # noqa: E402

STATE_LIFETIME = timedelta(minutes=10)
PROVIDERS = ("github", "gitlab")


class OAuthError(ValueError):
    """The callback cannot be accepted; the message says why."""


def provider_settings(provider: str) -> dict:
    config = current_app.config
    if provider == "github":
        return {
            "client_id": config.get("GITHUB_OAUTH_CLIENT_ID"),
            "client_secret": config.get("GITHUB_OAUTH_CLIENT_SECRET"),
            "authorize_url": config["GITHUB_OAUTH_URL"].rstrip("/") + "/login/oauth/authorize",
            "token_url": config["GITHUB_OAUTH_URL"].rstrip("/") + "/login/oauth/access_token",
            "user_url": config["GITHUB_API_URL"].rstrip("/") + "/user",
            "scope": "read:user",
            "host": "github.com",
            "login_key": "login",
        }
    base = config["GITLAB_OAUTH_URL"].rstrip("/")
    return {
        "client_id": config.get("GITLAB_OAUTH_CLIENT_ID"),
        "client_secret": config.get("GITLAB_OAUTH_CLIENT_SECRET"),
        "authorize_url": base + "/oauth/authorize",
        "token_url": base + "/oauth/token",
        "user_url": base + "/api/v4/user",
        "scope": "read_user",
        "host": (urlsplit(base).hostname or "gitlab.com").lower(),
        "login_key": "username",
    }


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _session_binding() -> str:
    binding = session.get("oauth_binding")
    if not binding:
        binding = session["oauth_binding"] = secrets.token_urlsafe(24)
    return binding


def authorization_url(provider: str, user_id: int, redirect_uri: str) -> str:
    """Issue a state for this session and return the provider's authorize URL (flushes)."""
    settings = provider_settings(provider)
    state = secrets.token_urlsafe(32)
    db.session.add(OAuthState(state_hash=_hash(state), session_binding=_session_binding(), user_id=user_id,
                              provider=provider, expires_at=utcnow() + STATE_LIFETIME))
    db.session.flush()
    client = OAuth2Client(settings["client_id"], settings["client_secret"], scope=settings["scope"],
                          redirect_uri=redirect_uri)
    url, _ = client.create_authorization_url(settings["authorize_url"], state=state)
    return url


def consume_state(provider: str, state: str | None, user_id: int) -> None:
    """Accept ``state`` once: issued to this session and user, for this provider, not expired.

    Raises :class:`OAuthError` otherwise. The conditional update makes two
    simultaneous callbacks with one state succeed at most once.
    """
    if not state or len(state) > 200:
        raise OAuthError("missing state")
    binding = session.get("oauth_binding")
    now = utcnow()
    result = db.session.execute(
        update(OAuthState)
        .where(
            OAuthState.state_hash == _hash(state),
            OAuthState.session_binding == (binding or "-"),
            OAuthState.user_id == user_id,
            OAuthState.provider == provider,
            OAuthState.used_at.is_(None),
            OAuthState.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise OAuthError("unknown, used, expired or foreign state")


def fetch_identity(provider: str, code: str, redirect_uri: str) -> tuple[int, str]:
    """Exchange ``code`` for a token and read the forge user: (numeric id, login).

    Raises :class:`OAuthError` when the provider refuses or answers oddly.
    """
    settings = provider_settings(provider)
    client = OAuth2Client(settings["client_id"], settings["client_secret"], redirect_uri=redirect_uri,
                          timeout=30)
    try:
        client.fetch_token(settings["token_url"], code=code, headers={"Accept": "application/json"})
        response = client.get(settings["user_url"], headers={"Accept": "application/json"})
    except Exception as exc:  # Authlib and httpx raise many kinds; all mean "not connected"
        raise OAuthError(f"the provider refused: {type(exc).__name__}") from None
    finally:
        client.close()
    if response.status_code != 200:
        raise OAuthError(f"the provider answered {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise OAuthError("the provider did not answer JSON") from None
    if not isinstance(data, dict):
        raise OAuthError("the provider did not say who you are")
    forge_id, login = data.get("id"), data.get(settings["login_key"])
    if (not isinstance(forge_id, int) or isinstance(forge_id, bool) or not 0 < forge_id <= 2**63 - 1
            or not isinstance(login, str) or not 0 < len(login) <= 255):
        raise OAuthError("the provider did not say who you are")
    try:
        check_text(login, "login", 255)
    except InvalidText:
        raise OAuthError("the provider sent a login we cannot store") from None
    return forge_id, login
