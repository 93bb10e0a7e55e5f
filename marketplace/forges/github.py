"""Reading GitHub REST objects into forge-neutral records.

Follows the issue object of ``GET /repos/{owner}/{repo}/issues`` (REST API
2022-11-28), where pull requests appear as issues carrying a ``pull_request``
key with ``merged_at``.
"""
from __future__ import annotations

from urllib.parse import quote, urlsplit

from marketplace.forges.http import ForgeHttp, NotFound, raise_for_status
from marketplace.forges.types import (
    ForgeIssue,
    ForgePayloadError,
    ForgePullRequest,
    ForgeReview,
    RepositoryInfo,
)
from marketplace.forges.urls import is_valid_path
from marketplace.timeutil import parse_forge_timestamp
from marketplace.validation import InvalidText, check_text, http_url

GITHUB_HOST = "github.com"
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1


def _id(obj: dict, key: str, maximum: int = MAX_BIGINT, required: bool = True) -> int | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ForgePayloadError(f"field {key!r} is missing or not a number from 1 to {maximum}")
    return value


def _str(obj: dict, key: str, max_length: int | None = None, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    try:
        return check_text(value, f"field {key!r}", max_length)
    except InvalidText as exc:
        raise ForgePayloadError(str(exc)) from None


def _html_url(obj: dict) -> str:
    url = http_url(_str(obj, "html_url", 2000))
    if url is None:
        raise ForgePayloadError("field 'html_url' is not an http(s) URL")
    return url


def _time(obj: dict, key: str, required: bool):
    value = obj.get(key)
    if value is None or value == "":
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
    # Recorded exports write id 0 for an author they could not see: unknown.
    uid = None if user.get("id") == 0 else _id(user, "id", required=False)
    return _str(user, "login", 255, required=False), uid


def _labels(obj: dict) -> list[str]:
    labels = obj.get("labels") or []
    if not isinstance(labels, list):
        raise ForgePayloadError("field 'labels' is not a list")
    names: set[str] = set()
    for label in labels:
        # Labels come as objects ({"name": …}) or, in some exports, as plain names.
        name = label.get("name") if isinstance(label, dict) else label
        if not isinstance(name, str) or not name.strip():
            continue
        try:
            names.add(check_text(name.strip(), "a label", 255))
        except InvalidText as exc:
            raise ForgePayloadError(str(exc)) from None
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
        if len(parts) == 2 and is_valid_path(parts[0], parts[1]):
            return GITHUB_HOST, parts[0], parts[1]
    html = obj.get("html_url")
    if isinstance(html, str):
        split = urlsplit(html)
        parts = [p for p in split.path.split("/") if p]
        if (
            split.hostname
            and len(parts) >= 4
            and parts[2] in ("issues", "pull")
            and is_valid_path(parts[0], parts[1])
        ):
            return split.hostname.lower(), parts[0], parts[1]
    raise ForgePayloadError("neither repository_url nor html_url names a repository")


def repository_visibility(obj) -> str | None:
    """A GitHub repository's visibility: public, private, internal, or None when not said.

    ``private`` decides (true for private and internal repositories; older
    payloads, such as the recorded ``repository.privatized`` example, say
    ``private: true`` beside ``visibility: "public"``); ``visibility`` tells
    internal from private.
    """
    if not isinstance(obj, dict):
        return None
    visibility = obj.get("visibility") if obj.get("visibility") in ("public", "private", "internal") else None
    if obj.get("private") is True:
        return "internal" if visibility == "internal" else "private"
    if obj.get("private") is False:
        return "public"
    return visibility


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
    state = _str(obj, "state")
    if state not in ("open", "closed"):
        raise ForgePayloadError(f"state {state!r} is neither open nor closed")
    login, uid = _user(obj)
    return ForgeIssue(
        forge_id=_id(obj, "id"),
        number=_id(obj, "number", MAX_INT),
        title=_str(obj, "title", 1024),
        body=_str(obj, "body", required=False),
        state=state,
        state_reason=_str(obj, "state_reason", 40, required=False),
        labels=_labels(obj),
        author_login=login,
        author_forge_id=uid,
        html_url=_html_url(obj),
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
    state = _str(obj, "state")
    if state not in ("open", "closed"):
        raise ForgePayloadError(f"state {state!r} is neither open nor closed")
    # A webhook's pull_request carries "merged"; lists carry only merged_at.
    merged_flag = obj.get("merged")
    from_issue_list = is_pull_request(obj)
    merged_source = obj["pull_request"] if from_issue_list else obj
    merged_at = _time(merged_source, "merged_at", False)
    base = obj.get("base") if isinstance(obj.get("base"), dict) else {}
    head = obj.get("head") if isinstance(obj.get("head"), dict) else {}
    head_repo = head.get("repo") if isinstance(head.get("repo"), dict) else {}
    base_repo = base.get("repo") if isinstance(base.get("repo"), dict) else {}
    head_name = head_repo.get("full_name")
    is_fork = bool(head_name) and head_name != base_repo.get("full_name")
    if merged_flag is False:
        merged_at = None
    return ForgePullRequest(
        number=_id(obj, "number", MAX_INT),
        title=_str(obj, "title", 1024),
        body=_str(obj, "body", required=False),
        state="merged" if merged_at else state,
        author_login=login,
        author_forge_id=uid,
        html_url=_html_url(obj),
        created_at=_time(obj, "created_at", True),
        updated_at=_time(obj, "updated_at", True),
        closed_at=_time(obj, "closed_at", False),
        merged_at=merged_at,
        forge_id=None if from_issue_list else _id(obj, "id"),
        forge_issue_id=_id(obj, "id") if from_issue_list else None,
        base_branch=_str(base, "ref", 255, required=False),
        head_repository=_str(head_repo, "full_name", 511, required=False) if is_fork else None,
        labels=_labels(obj),
        author_deleted=obj.get("user") is None,
    )


class GitHubClient:
    """GitHub REST API v3 (``GITHUB_API_URL``, default https://api.github.com).

    Endpoints: ``GET /repos/{owner}/{repo}``, ``GET /repos/{owner}/{repo}/issues``
    (``state=all&sort=updated&direction=desc&per_page=100``, ``since``),
    ``GET /repos/{owner}/{repo}/pulls`` (``state=all&sort=updated&direction=desc``) and
    ``GET /repos/{owner}/{repo}/pulls/{number}/reviews`` (training claims' pull requests).
    """

    kind = "github"

    def __init__(self, api_url: str, token: str | None, transport=None):
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "backlog-commons",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = ForgeHttp(api_url, headers, transport)

    def repository_info(self, repo):
        """``GET /repos/{owner}/{repo}`` (follows a rename's redirect)."""
        data = self.http.get_json(f"/repos/{repo.owner}/{repo.name}")
        owner = data.get("owner") or {}
        return RepositoryInfo(
            forge_id=_id(data, "id"),
            owner=_str(owner, "login", 255),
            name=_str(data, "name", 255),
            default_branch=_str(data, "default_branch", 255, required=False),
            visibility=repository_visibility(data),
        )

    def issue(self, repo, number: int) -> ForgeIssue:
        """``GET /repos/{owner}/{repo}/issues/{number}``: the issue as the forge holds it now.

        Raises :class:`ForgeError` (``NotFound`` for a deleted or transferred
        issue) and :class:`ForgePayloadError` (a pull request, or a bad object).
        """
        return parse_issue(self.http.get_json(f"/repos/{repo.owner}/{repo.name}/issues/{number}"))

    def issue_pages(self, repo, since, cache):
        """Pages of issues and pull requests updated at or after ``since`` (all when None)."""
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": "100"}
        if since is not None:
            params["since"] = since.replace(microsecond=0).isoformat() + "Z"
        yield from self.http.pages(f"/repos/{repo.owner}/{repo.name}/issues", params, cache)

    def pull_pages(self, repo, cache):
        """Pages of pull requests, most recently updated first."""
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": "100"}
        yield from self.http.pages(f"/repos/{repo.owner}/{repo.name}/pulls", params, cache)

    def issue_deleted(self, repo, number: int) -> bool:
        """Whether ``GET /repos/{owner}/{repo}/issues/{number}`` says the issue was
        deleted: 410 Gone. A transferred issue redirects (301) and a 404 may be a
        permission problem: neither counts. Raises :class:`ForgeError` for other failures."""
        response = self.http._send(self.http.url(f"/repos/{repo.owner}/{repo.name}/issues/{number}"), None, None)
        if response.status_code == 410:
            return True
        if response.status_code == 404:
            return False
        raise_for_status(response)
        return False

    def pull_reviews(self, repo, number: int) -> list[ForgeReview]:
        """``GET /repos/{owner}/{repo}/pulls/{number}/reviews`` (every page, oldest first):
        the reviews submitted on pull request ``number`` (issue 19: the mentor reviews a
        missed ``pull_request_review`` webhook would have brought). Reviews without a
        numeric id or reviewer are left out (a deleted user's review has ``user: null``).
        Raises :class:`ForgeError` (``NotFound`` when the pull request is gone)."""
        found = []
        for page in self.http.pages(f"/repos/{repo.owner}/{repo.name}/pulls/{number}/reviews",
                                    {"per_page": "100"}, None):
            for obj in page.items or []:
                user = obj.get("user") if isinstance(obj, dict) else None
                if not isinstance(obj, dict) or not isinstance(obj.get("id"), int) or not isinstance(user, dict):
                    continue
                reviewer = user.get("id") if isinstance(user.get("id"), int) else None
                found.append(ForgeReview(reviewer_forge_id=reviewer, state=str(obj.get("state") or "").lower(),
                                         body=obj.get("body") if isinstance(obj.get("body"), str) else "",
                                         submitted_at=_time(obj, "submitted_at", required=False),
                                         review_id=obj["id"]))
        return found

    # --- writes (issue 22: the living comment and label; REST "Issue comments", "Labels") ---

    def list_comments(self, repo, number: int) -> list[tuple[int, str]]:
        """``GET /repos/{owner}/{repo}/issues/{number}/comments``, every page: ``[(id, body)]``."""
        found = []
        for page in self.http.pages(f"/repos/{repo.owner}/{repo.name}/issues/{number}/comments",
                                    {"per_page": "100"}, None):
            found += [(c["id"], c.get("body") or "") for c in page.items or [] if isinstance(c.get("id"), int)]
        return found

    def post_comment(self, repo, number: int, body: str) -> tuple[int, str | None]:
        """``POST /repos/{owner}/{repo}/issues/{number}/comments``: ``(comment id, html_url)``."""
        data = self.http.write_json("POST", f"/repos/{repo.owner}/{repo.name}/issues/{number}/comments",
                                    {"body": body})
        return _id(data, "id"), data.get("html_url")

    def edit_comment(self, repo, number: int, comment_id: int, body: str) -> None:
        """``PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}``; ``NotFound`` when deleted."""
        self.http.write_json("PATCH", f"/repos/{repo.owner}/{repo.name}/issues/comments/{comment_id}",
                             {"body": body})

    def set_label(self, repo, number: int, label: str, present: bool) -> None:
        """Add (``POST …/issues/{number}/labels``) or remove (``DELETE …/labels/{name}``;
        already gone is fine) the label ``label`` on the issue."""
        path = f"/repos/{repo.owner}/{repo.name}/issues/{number}/labels"
        if present:
            self.http.write_json("POST", path, {"labels": [label]})
            return
        try:
            self.http.write_json("DELETE", f"{path}/{quote(label, safe='')}")
        except NotFound:
            pass

    @staticmethod
    def parse_list_item(obj: dict):
        """An element of the issues list: a :class:`ForgeIssue` or a :class:`ForgePullRequest`."""
        return parse_pull_request(obj) if is_pull_request(obj) else parse_issue(obj)

    @staticmethod
    def parse_pull(obj: dict) -> ForgePullRequest:
        return parse_pull_request(obj)

    def close(self) -> None:
        self.http.close()
