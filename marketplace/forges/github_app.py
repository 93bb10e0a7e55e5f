"""GitHub App authentication: installation access tokens.

Follows GitHub's "Authenticating as a GitHub App installation": a JSON Web
Token signed with the App's private key (RS256; ``iat`` 60 s in the past,
``exp`` at most 10 minutes ahead, ``iss`` the App id) buys an installation
token from ``POST /app/installations/{installation_id}/access_tokens``; the
token lives one hour and is reused until five minutes before it expires.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import httpx
import jwt

from marketplace.forges.http import raise_for_status

REFRESH_MARGIN = 300  # seconds before expiry when a new token is bought
_cache: dict[tuple[str, int], tuple[str, float]] = {}
_lock = threading.Lock()


def app_jwt(app_id: str, private_key: str, now: float | None = None) -> str:
    """The App's JWT (RS256), valid from one minute ago for nine minutes."""
    now = int(now if now is not None else time.time())
    return jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(app_id)}, private_key, algorithm="RS256")


def installation_token(api_url: str, app_id: str, private_key: str, installation_id: int,
                       transport: httpx.BaseTransport | None = None) -> str:
    """An access token for ``installation_id``, from the cache or bought now.

    Raises :class:`~marketplace.forges.http.ForgeError` (e.g. ``Forbidden``,
    ``NotFound``) when GitHub refuses.
    """
    key = (api_url, installation_id)
    with _lock:
        cached = _cache.get(key)
        if cached and cached[1] - REFRESH_MARGIN > time.time():
            return cached[0]
    headers = {
        "Authorization": f"Bearer {app_jwt(app_id, private_key)}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "backlog-commons",
    }
    with httpx.Client(timeout=30.0, transport=transport) as client:
        response = client.post(f"{api_url.rstrip('/')}/app/installations/{installation_id}/access_tokens",
                               headers=headers)
    raise_for_status(response)
    body = response.json()
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
    with _lock:
        _cache[key] = (body["token"], expires.timestamp())
    return body["token"]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
