"""HTTP to forge REST APIs: conditional requests, pagination and rate limits.

Shared by the GitHub and GitLab clients. Follows GitHub's "Best practices for
using the REST API" (conditional requests, ``Retry-After``,
``X-RateLimit-Remaining``/``X-RateLimit-Reset``) and GitLab's
``RateLimit-*`` headers. Nothing here sleeps: a limit raises
:class:`RateLimited` with the time to resume, and the job reschedules itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from marketplace.timeutil import utcnow

_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')
DEFAULT_TIMEOUT = 30.0  # seconds


class ForgeError(Exception):
    """The forge answered with an error we cannot act on here."""


class RateLimited(ForgeError):
    """A primary or secondary rate limit: try again at ``resume_at`` (naive UTC)."""

    def __init__(self, resume_at: datetime, reason: str):
        super().__init__(f"{reason}; resume at {resume_at.isoformat()}Z")
        self.resume_at = resume_at
        self.reason = reason


class Forbidden(ForgeError):
    """403 without a rate limit: missing permission. Retrying will not help."""


class NotFound(ForgeError):
    """404: gone, private, or a feature turned off (pull requests disabled)."""


class Unavailable(ForgeError):
    """5xx or a network failure: worth retrying later."""


@dataclass(frozen=True)
class CachedPage:
    """What we stored about a URL after processing its page."""

    etag: str
    next_url: str | None


class PageCache(Protocol):
    """ETags of processed pages, keyed by URL."""

    def get(self, url: str) -> CachedPage | None: ...


@dataclass
class Page:
    """One page of a list. ``items`` is None when the forge answered 304."""

    url: str
    items: list[dict] | None
    next_url: str | None
    etag: str | None

    @property
    def not_modified(self) -> bool:
        return self.items is None


def parse_link_header(value: str | None) -> dict[str, str]:
    """``Link`` header (RFC 8288) as {rel: url}."""
    return {rel: url for url, rel in _LINK.findall(value or "")}


MAX_WAIT = timedelta(days=1)  # a reset or Retry-After further away is not believed


def _epoch_to_utc(value: str) -> datetime | None:
    try:
        number = int(float(value))
        if number > 10**11:  # some recordings give milliseconds
            number //= 1000
        when = datetime.fromtimestamp(number, tz=timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        return None
    return when


def _retry_after(value: str | None) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return utcnow() + min(timedelta(seconds=int(value[:7])), MAX_WAIT)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def raise_for_status(response: httpx.Response) -> None:
    """Turn an error answer into the matching :class:`ForgeError`.

    403/429 with ``Retry-After`` → secondary limit; with a remaining count of
    0 → primary limit until the reset time; other 403 → :class:`Forbidden`;
    404 → :class:`NotFound`; 5xx → :class:`Unavailable`.
    """
    status = response.status_code
    if status < 400:
        return
    headers = response.headers
    message = _message(response)
    if status in (403, 429):
        resume = _retry_after(headers.get("Retry-After"))
        if resume is not None:
            raise RateLimited(resume, f"secondary rate limit ({status}: {message})")
        remaining = headers.get("X-RateLimit-Remaining", headers.get("RateLimit-Remaining"))
        reset = headers.get("X-RateLimit-Reset", headers.get("RateLimit-Reset"))
        if remaining is not None and remaining.strip() == "0":
            resume = (_epoch_to_utc(reset) if reset else None) or utcnow() + timedelta(minutes=1)
            raise RateLimited(min(resume, utcnow() + MAX_WAIT), f"rate limit exhausted ({status}: {message})")
        if status == 429 or "secondary rate limit" in message.lower() or "abuse" in message.lower():
            # GitHub: without Retry-After, wait at least a minute before trying again.
            raise RateLimited(utcnow() + timedelta(minutes=1), f"secondary rate limit ({status}: {message})")
        raise Forbidden(f"403 Forbidden: {message}")
    if status == 404:
        raise NotFound(f"404 Not Found: {response.request.url}")
    if status >= 500:
        raise Unavailable(f"{status} from the forge: {message}")
    raise ForgeError(f"{status} from the forge: {message}")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]


class ForgeHttp:
    """An httpx client for one forge API base URL, with conditional GETs."""

    def __init__(self, base_url: str, headers: dict[str, str], transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(
            headers=headers, timeout=DEFAULT_TIMEOUT, transport=transport, follow_redirects=True
        )
        self.requests = 0  # every request sent
        self.not_modified = 0  # requests answered 304 (free of rate limit on GitHub)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def get_json(self, path: str, params: dict | None = None):
        """GET ``path`` and return the decoded JSON. Raises a :class:`ForgeError`."""
        response = self._send(self.url(path), params, None)
        raise_for_status(response)
        try:
            return response.json()
        except ValueError:
            raise Unavailable(f"the forge answered something that is not JSON for {path}") from None

    def get_page(self, url: str, params: dict | None, cache: PageCache | None) -> Page:
        """GET one page of a list, conditionally when ``cache`` knows its ETag.

        A 304 is accepted only for a URL whose page we stored after processing
        it; otherwise the request is sent once more without ``If-None-Match``,
        and a second 304 is an error, never an empty list.
        """
        full = str(httpx.URL(self.url(url), params=params)) if params else self.url(url)
        cached = cache.get(full) if cache is not None else None
        response = self._send(full, None, cached.etag if cached else None)
        if response.status_code == 304 and cached is not None:
            return Page(full, None, cached.next_url, cached.etag)
        if response.status_code == 304:
            response = self._send(full, None, None, no_cache=True)
            if response.status_code == 304:
                raise ForgeError(f"304 Not Modified without a cached page for {full}")
        raise_for_status(response)
        try:
            items = response.json()
        except ValueError:
            raise Unavailable(f"the forge answered something that is not JSON for {full}") from None
        if not isinstance(items, list):
            raise ForgeError(f"expected a JSON list from {full}")
        return Page(full, items, parse_link_header(response.headers.get("Link")).get("next"),
                    response.headers.get("ETag"))

    def pages(self, path: str, params: dict | None, cache: PageCache | None):
        """Every page of a list, following ``Link: rel="next"``, one at a time."""
        page = self.get_page(path, params, cache)
        while True:
            yield page
            if not page.next_url:
                return
            page = self.get_page(page.next_url, None, cache)

    def write_json(self, method: str, path: str, body: dict | None = None):
        """Send one write (``POST``, ``PATCH``, ``PUT``, ``DELETE``) with a JSON
        body; returns the decoded JSON answer (None when it has none). Never
        retried here: a write the forge may have made is not sent twice blindly.
        Raises a :class:`ForgeError` (``RateLimited``, ``NotFound``…) like the reads."""
        try:
            response = self.client.request(method, self.url(path), json=body)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the forge: {exc}") from exc
        self.requests += 1
        raise_for_status(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _send(self, url: str, params: dict | None, etag: str | None, no_cache: bool = False) -> httpx.Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if no_cache:
            headers["Cache-Control"] = "no-cache"
        try:
            response = self.client.get(url, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the forge: {exc}") from exc
        self.requests += 1
        if response.status_code == 304:
            self.not_modified += 1
        return response

    def close(self) -> None:
        self.client.close()
