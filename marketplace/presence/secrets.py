"""GitLab project access tokens at rest: encrypted with Fernet (AES-128-CBC and
HMAC-SHA256, from ``cryptography``, already installed with PyJWT[crypto]).

The key is ``FORGE_TOKEN_KEY`` (a Fernet key: 32 url-safe base64 bytes) when
set — it can then be rotated apart from the session secret — else derived
from ``SECRET_KEY`` with HKDF-SHA256 under its own label, so that the stored
token is never readable from the database alone.
"""
from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_INFO = b"backlog-commons forge token encryption v1"


class TokenUnreadable(RuntimeError):
    """The stored token cannot be decrypted with the current key (the key changed)."""


def _fernet() -> Fernet:
    key = current_app.config.get("FORGE_TOKEN_KEY") or os.environ.get("FORGE_TOKEN_KEY")
    if key:
        return Fernet(key.encode() if isinstance(key, str) else key)
    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_token(token: str) -> str:
    """``token`` encrypted (a Fernet token, ASCII)."""
    return _fernet().encrypt(token.encode()).decode("ascii")


def decrypt_token(stored: str) -> str:
    """The token :func:`encrypt_token` stored. Raises :class:`TokenUnreadable`."""
    try:
        return _fernet().decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise TokenUnreadable("the stored GitLab token cannot be decrypted with the current key") from None
