"""Checks for text and URLs that come from outside (forges, the registry, requests).

PostgreSQL text cannot hold NUL characters and our columns have lengths; both
backends must refuse the same input, so these checks run before any write.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

_ASCII_NUMBER = re.compile(r"[+-]?[0-9]{1,18}")


class InvalidText(ValueError):
    """A text value is missing, too long or contains a NUL character."""


def check_text(value: object, field: str, max_length: int | None = None) -> str:
    """Return ``value`` when it is a string without NUL of at most ``max_length`` characters.

    Raises :class:`InvalidText` naming ``field`` otherwise.
    """
    if not isinstance(value, str):
        raise InvalidText(f"{field} is not text")
    if "\x00" in value:
        raise InvalidText(f"{field} contains a NUL character")
    if max_length is not None and len(value) > max_length:
        raise InvalidText(f"{field} is longer than {max_length} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidText(f"{field} is not valid Unicode text") from None
    return value


def ascii_int(value: str) -> int | None:
    """The integer written in ASCII digits (optional sign), or None.

    ``str.isdigit`` and ``int`` accept other scripts' digits and superscripts;
    query parameters accept only 0–9.
    """
    value = value.strip()
    return int(value) if _ASCII_NUMBER.fullmatch(value) else None


def http_url(value: object, *, allow_mailto: bool = False) -> str | None:
    """Return ``value`` when it is an absolute http(s) URL (or mailto:), else None.

    Used for every outside URL put in an ``href``: ``javascript:``, ``data:``
    and relative URLs never reach a page or the API.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or "\x00" in text or any(ch.isspace() for ch in text):
        return None
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        return text
    if allow_mailto and scheme == "mailto" and parts.path:
        return text
    return None
