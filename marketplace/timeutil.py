"""Time helpers. Every stored timestamp is a naive ``datetime`` in UTC."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current time in UTC as a naive ``datetime`` (the storage form)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_forge_timestamp(value: str | None) -> datetime | None:
    """Parse an ISO 8601 timestamp from a forge API into naive UTC.

    Accepts ``2026-05-15T00:00:00Z`` (GitHub) and offsets such as
    ``2026-05-15T00:00:00.000+02:00`` or ``2026-05-15 10:00:00 UTC`` (GitLab
    webhooks). Returns ``None`` for ``None`` or an empty string.

    Raises ``ValueError`` when the text is not a timestamp.
    """
    if not value:
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")] + "+00:00"
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed
