"""Parse repository URLs as people write them into forge coordinates.

GitHub paths are ``owner/name``; GitLab paths nest groups
(``group/subgroup/name``) and put sub-pages after ``/-/``. A URL with a single
path segment on a forge names an organisation or group, not a repository.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

GITHUB_HOSTS = frozenset({"github.com"})
# Self-hosted GitLab instances seen in the DPG registry follow this naming.
_GITLAB_HOST = re.compile(r"^(gitlab\.com|gitlab\.[a-z0-9.-]+)$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class InvalidRepositoryUrl(ValueError):
    """The text is not an http(s) URL we can read."""


@dataclass(frozen=True)
class ParsedUrl:
    """Forge coordinates of a URL.

    ``kind`` is ``github``, ``gitlab`` or ``other``; ``owner``/``name`` are set
    for forge repositories; ``is_namespace`` is true for an organisation or
    group URL on a forge (then ``owner`` holds the namespace and ``name`` is None).
    ``url`` is the canonical form (``https://host/owner/name`` for repositories).
    """

    kind: str
    host: str
    owner: str | None
    name: str | None
    is_namespace: bool
    url: str

    @property
    def is_repository(self) -> bool:
        return self.kind in ("github", "gitlab") and self.name is not None

    @property
    def path_key(self) -> str | None:
        return path_key(self.owner, self.name) if self.is_repository else None


def path_key(owner: str, name: str) -> str:
    """The case-insensitive lookup key of ``owner/name`` (forges ignore case)."""
    return f"{owner}/{name}".lower()


def is_valid_path(owner: str, name: str) -> bool:
    """True when ``owner`` (segments joined by ``/``) and ``name`` are valid forge path segments."""
    segments = owner.split("/") + [name]
    return all(_SEGMENT.match(segment) and segment not in (".", "..") for segment in segments)


def forge_kind_for_host(host: str) -> str:
    """Return ``github``, ``gitlab`` or ``other`` for a lower-case host name."""
    if host in GITHUB_HOSTS:
        return "github"
    if _GITLAB_HOST.match(host):
        return "gitlab"
    return "other"


def parse_repository_url(text: str) -> ParsedUrl:
    """Parse ``text`` (an http or https URL) into :class:`ParsedUrl`.

    Trailing slashes, a ``.git`` suffix, ``www.``, query strings, fragments and
    sub-pages (``/tree/main``, GitLab ``/-/issues``) are dropped for forge URLs.

    Raises :class:`InvalidRepositoryUrl` for anything that is not an absolute
    http(s) URL with a host, or whose forge path has characters a forge forbids.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidRepositoryUrl("empty URL")
    raw = text.strip()
    if any(ch.isspace() for ch in raw):
        raise InvalidRepositoryUrl(f"URL contains spaces: {raw!r}")
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidRepositoryUrl(f"not an http(s) URL: {raw!r}")
    host = parts.hostname.lower()
    if host.startswith("www."):
        host = host[4:]
    kind = forge_kind_for_host(host)
    if kind == "other":
        return ParsedUrl("other", host, None, None, False, raw)

    path = parts.path
    if kind == "gitlab" and "/-/" in path:
        path = path.split("/-/", 1)[0]
    segments = [s for s in path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
    if not segments:
        # The forge's home page: neither a repository nor a namespace.
        return ParsedUrl("other", host, None, None, False, raw)
    if kind == "github":
        if segments[0] == "orgs" and len(segments) >= 2:
            segments = segments[1:2]
        segments = segments[:2]
    for segment in segments:
        if not _SEGMENT.match(segment):
            raise InvalidRepositoryUrl(f"{segment!r} is not a valid {kind} path segment in {raw!r}")
    if len(segments) == 1:
        return ParsedUrl(kind, host, segments[0], None, True, f"https://{host}/{segments[0]}")
    owner, name = "/".join(segments[:-1]), segments[-1]
    return ParsedUrl(kind, host, owner, name, False, f"https://{host}/{owner}/{name}")
