"""Signed, expiring tokens for e-mail links (itsdangerous, keyed by SECRET_KEY).

Each purpose has its own salt, so a token for one cannot be used for another.
Password-reset tokens embed a fingerprint of the current password hash and
session version: once used (the password changes), the token no longer
verifies, which makes it single-use.
"""
from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

VERIFY_MAX_AGE = 48 * 3600  # seconds
RESET_MAX_AGE = 3600  # seconds


class InvalidToken(ValueError):
    """The token is forged, expired, used, or for another purpose."""


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(user) -> str:
    # The password, the sessions and the address: a change of any of them
    # kills reset links issued before.
    material = f"{user.password_hash or ''}:{user.session_version}:{user.email_key or ''}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


def make_email_token(user, email: str) -> str:
    """A token proving control of ``email`` for ``user`` (sign-up or change of e-mail).

    It carries the account's ``email_token_version``: any later request or
    change of address makes it stale.
    """
    return _serializer("verify-email").dumps({"user": user.id, "email": email, "v": user.email_token_version})


def read_email_token(token: str) -> tuple[int, str, int]:
    """(user id, e-mail, version) of a well-signed, unexpired token. Raises :class:`InvalidToken`."""
    try:
        data = _serializer("verify-email").loads(token, max_age=VERIFY_MAX_AGE)
    except SignatureExpired:
        raise InvalidToken("expired") from None
    except BadSignature:
        raise InvalidToken("invalid") from None
    return int(data["user"]), str(data["email"]), int(data.get("v", 0))


def make_reset_token(user) -> str:
    return _serializer("reset-password").dumps({"user": user.id, "fp": _fingerprint(user)})


def read_reset_token(token: str, load_user) -> object:
    """The user of a valid, unused reset token. Raises :class:`InvalidToken`."""
    try:
        data = _serializer("reset-password").loads(token, max_age=RESET_MAX_AGE)
    except SignatureExpired:
        raise InvalidToken("expired") from None
    except BadSignature:
        raise InvalidToken("invalid") from None
    user = load_user(int(data["user"]))
    if user is None or data.get("fp") != _fingerprint(user):
        raise InvalidToken("used")
    return user
