"""Reading GitHub REST objects into forge-neutral records.

Follows the issue object of ``GET /repos/{owner}/{repo}/issues`` (REST API
2022-11-28), where pull requests appear as issues carrying a ``pull_request``
key with ``merged_at``.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from marketplace.forges.types import ForgeIssue, ForgePayloadError, ForgePullRequest
from marketplace.timeutil import parse_forge_timestamp

GITHUB_HOST = "github.com"


def _require(obj: dict, key: str, kind: type | tuple[type, ...]):
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ForgePayloadError(f"field {key!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def _time(obj: dict, key: str, required: bool):
    value = obj.get(key)
    if value is None:
        if required:
            raise ForgePayloadError(f"field {key!r} is missing")
        return None
    if not isinstance(value, str):
        raise ForgePayloadError(f"field {key!r} is not a timestamp")
    try:
        return parse_forge_timestamp(value)
    except ValueError:
        raise ForgePayloadError(f"field {key!r} is not a timestamp: {value!r}") from None


def _user(obj: dict) -> tuple[str | None, int | None]:
    user = obj.get("user")
    if not isinstance(user, dict):
        return None, None
    login = user.get("login") if isinstance(user.get("login"), str) else None
    uid = user.get("id") if isinstance(user.get("id"), int) else None
    return login, uid


def _labels(obj: dict) -> list[str]:
    names = []
    for label in obj.get("labels") or []:
        # Labels come as objects ({"name": …}) or, in some exports, as plain names.
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str) and name.strip() and name not in names:
            names.append(name.strip())
    return sorted(names)


def repository_path_of(obj: dict) -> tuple[str, str, str]:
    """Return (host, owner, name) of the repository an issue object belongs to.

    Reads ``repository_url`` (``https://api.github.com/repos/{owner}/{repo}``)
    and falls back on ``html_url`` (``https://github.com/{owner}/{repo}/issues/N``).
    Raises :class:`ForgePayloadError` when neither names a repository.
    """
    api_url = obj.get("repository_url")
    if isinstance(api_url, str) and "/repos/" in api_url:
        parts = api_url.split("/repos/", 1)[1].strip("/").split("/")
        if len(parts) == 2 and all(parts):
            return GITHUB_HOST, parts[0], parts[1]
    html = obj.get("html_url")
    if isinstance(html, str):
        split = urlsplit(html)
        parts = [p for p in split.path.split("/") if p]
        if split.hostname and len(parts) >= 4 and parts[2] in ("issues", "pull"):
            return split.hostname.lower(), parts[0], parts[1]
    raise ForgePayloadError("neither repository_url nor html_url names a repository")


def is_pull_request(obj: dict) -> bool:
    """True when an object from the issues list is a pull request."""
    return isinstance(obj.get("pull_request"), dict)


def parse_issue(obj: dict) -> ForgeIssue:
    """Read a GitHub issue object into a :class:`ForgeIssue`.

    Raises :class:`ForgePayloadError` when a required field is missing, or when
    the object is a pull request.
    """
    if not isinstance(obj, dict):
        raise ForgePayloadError("not a JSON object")
    if is_pull_request(obj):
        raise ForgePayloadError("a pull request, not an issue")
    state = _require(obj, "state", str)
    if state not in ("open", "closed"):
        raise ForgePayloadError(f"state {state!r} is neither open nor closed")
    login, uid = _user(obj)
    reason = obj.get("state_reason")
    return ForgeIssue(
        forge_id=_require(obj, "id", int),
        number=_require(obj, "number", int),
        title=_require(obj, "title", str),
        body=obj.get("body") if isinstance(obj.get("body"), str) else None,
        state=state,
        state_reason=reason if isinstance(reason, str) else None,
        labels=_labels(obj),
        author_login=login,
        author_forge_id=uid,
        html_url=_require(obj, "html_url", str),
        comments_count=obj.get("comments") if isinstance(obj.get("comments"), int) else 0,
        locked=bool(obj.get("locked")),
        created_at=_time(obj, "created_at", True),
        updated_at=_time(obj, "updated_at", True),
        closed_at=_time(obj, "closed_at", False),
    )


def parse_pull_request(obj: dict) -> ForgePullRequest:
    """Read a pull request into a :class:`ForgePullRequest`.

    Accepts both the issues-list shape (``pull_request.merged_at``; ``id`` is the
    issue id) and the pulls shape (``GET /repos/{owner}/{repo}/pulls/{n}``:
    ``merged_at``, ``base.ref``, ``head.repo``; ``id`` is the pull request id).
    Raises :class:`ForgePayloadError` when a required field is missing.
    """
    if not isinstance(obj, dict):
        raise ForgePayloadError("not a JSON object")
    login, uid = _user(obj)
    state = _require(obj, "state", str)
    if state not in ("open", "closed"):
        raise ForgePayloadError(f"state {state!r} is neither open nor closed")
    from_issue_list = is_pull_request(obj)
    merged_source = obj["pull_request"] if from_issue_list else obj
    merged_at = _time(merged_source, "merged_at", False)
    base = obj.get("base") if isinstance(obj.get("base"), dict) else {}
    head = obj.get("head") if isinstance(obj.get("head"), dict) else {}
    head_repo = head.get("repo") if isinstance(head.get("repo"), dict) else {}
    base_repo = base.get("repo") if isinstance(base.get("repo"), dict) else {}
    head_name = head_repo.get("full_name")
    is_fork = bool(head_name) and head_name != base_repo.get("full_name")
    return ForgePullRequest(
        number=_require(obj, "number", int),
        title=_require(obj, "title", str),
        body=obj.get("body") if isinstance(obj.get("body"), str) else None,
        state="merged" if merged_at else state,
        author_login=login,
        author_forge_id=uid,
        html_url=_require(obj, "html_url", str),
        created_at=_time(obj, "created_at", True),
        updated_at=_time(obj, "updated_at", True),
        closed_at=_time(obj, "closed_at", False),
        merged_at=merged_at,
        forge_id=None if from_issue_list else _require(obj, "id", int),
        forge_issue_id=_require(obj, "id", int) if from_issue_list else None,
        base_branch=base.get("ref") if isinstance(base.get("ref"), str) else None,
        head_repository=head_name if is_fork else None,
        labels=_labels(obj),
    )
