"""GitLab REST API v4 and webhook objects, read into forge-neutral records.

Issues and merge requests are keyed by the project's numeric id and their
``iid`` (the number shown in the UI). Follows the GitLab REST docs for
``GET /projects/:id``, ``GET /projects/:id/issues``,
``GET /projects/:id/merge_requests``, ``GET /projects/:id/merge_requests/:iid/approvals``
and the "Issue" and "Merge request" webhook events.
"""
from __future__ import annotations

from urllib.parse import quote

from marketplace.forges.github import MAX_INT, _html_url, _id, _labels, _str, _time
from marketplace.forges.http import ForgeHttp, NotFound
from marketplace.forges.types import (
    ForgeIssue,
    ForgePayloadError,
    ForgePullRequest,
    ForgeReview,
    RepositoryInfo,
)

_ISSUE_STATES = {"opened": "open", "reopened": "open", "closed": "closed"}
_MR_STATES = {"opened": "open", "reopened": "open", "locked": "open", "closed": "closed", "merged": "merged"}


def _author(obj: dict, hook_user: dict | None = None) -> tuple[str | None, int | None]:
    author = obj.get("author") if isinstance(obj.get("author"), dict) else None
    if author is not None:
        return _str(author, "username", 255, required=False), _id(author, "id", required=False)
    author_id = obj.get("author_id")
    return None, author_id if isinstance(author_id, int) and author_id > 0 else None


def _gitlab_labels(obj: dict) -> list[str]:
    # REST gives names; hooks give objects with "title".
    labels = obj.get("labels") or []
    if not isinstance(labels, list):
        raise ForgePayloadError("field 'labels' is not a list")
    names = [label.get("title") if isinstance(label, dict) else label for label in labels]
    return _labels({"labels": [n for n in names if isinstance(n, str)]})


def parse_issue(obj: dict, payload: dict | None = None) -> ForgeIssue:
    """A GitLab issue (REST object, or a hook's ``object_attributes``) as :class:`ForgeIssue`.

    Raises :class:`ForgePayloadError` for a missing or malformed field.
    """
    if not isinstance(obj, dict):
        raise ForgePayloadError("not a JSON object")
    state = _ISSUE_STATES.get(obj.get("state"))
    if state is None:
        raise ForgePayloadError(f"state {obj.get('state')!r} is not a GitLab issue state")
    login, uid = _author(obj)
    labels_source = payload if payload and "labels" in payload else obj
    return ForgeIssue(
        forge_id=_id(obj, "id"),
        number=_id(obj, "iid", MAX_INT),
        title=_str(obj, "title", 1024),
        body=_str(obj, "description", required=False),
        state=state,
        state_reason=None,
        labels=_gitlab_labels(labels_source),
        author_login=login,
        author_forge_id=uid,
        html_url=_html_url({"html_url": obj.get("web_url") or obj.get("url")}),
        comments_count=obj.get("user_notes_count") if isinstance(obj.get("user_notes_count"), int) else 0,
        locked=bool(obj.get("discussion_locked")),
        created_at=_time(obj, "created_at", True),
        updated_at=_time(obj, "updated_at", True),
        closed_at=_time(obj, "closed_at", False),
        confidential=obj.get("confidential") is True,
        moved_to_id=_id(obj, "moved_to_id", required=False) if obj.get("moved_to_id") else None,
        duplicated_to_id=_id(obj, "duplicated_to_id", required=False) if obj.get("duplicated_to_id") else None,
    )


VISIBILITY_LEVELS = {0: "private", 10: "internal", 20: "public"}


def project_visibility(project: dict) -> str | None:
    """A GitLab project's visibility: REST ``visibility``, or a hook's ``visibility_level`` (0, 10, 20)."""
    if not isinstance(project, dict):
        return None
    if project.get("visibility") in ("private", "internal", "public"):
        return project["visibility"]
    level = project.get("visibility_level")
    return VISIBILITY_LEVELS.get(level) if isinstance(level, int) and not isinstance(level, bool) else None


def parse_merge_request(obj: dict, action: str | None = None) -> ForgePullRequest:
    """A GitLab merge request (REST object or hook ``object_attributes``).

    A hook's ``action`` (open, close, reopen, update, merge) wins; without it
    the ``state`` decides (``merged`` → merged). Raises :class:`ForgePayloadError`.
    """
    if not isinstance(obj, dict):
        raise ForgePayloadError("not a JSON object")
    state = _MR_STATES.get(obj.get("state"))
    if action == "merge":
        state = "merged"
    elif action == "close":
        state = "closed"
    elif action in ("open", "reopen"):
        state = "open"
    if state is None:
        raise ForgePayloadError(f"state {obj.get('state')!r} is not a GitLab merge request state")
    login, uid = _author(obj)
    merged_at = _time(obj, "merged_at", False)
    if state == "merged" and merged_at is None:
        merged_at = _time(obj, "updated_at", True)
    if state != "merged":
        merged_at = None
    source_project = obj.get("source_project_id")
    target_project = obj.get("target_project_id")
    is_fork = isinstance(source_project, int) and isinstance(target_project, int) and source_project != target_project
    source = obj.get("source") if isinstance(obj.get("source"), dict) else {}
    return ForgePullRequest(
        number=_id(obj, "iid", MAX_INT),
        title=_str(obj, "title", 1024),
        body=_str(obj, "description", required=False),
        state=state,
        author_login=login,
        author_forge_id=uid,
        html_url=_html_url({"html_url": obj.get("web_url") or obj.get("url")}),
        created_at=_time(obj, "created_at", True),
        updated_at=_time(obj, "updated_at", True),
        closed_at=_time(obj, "closed_at", False),
        merged_at=merged_at,
        forge_id=_id(obj, "id"),
        base_branch=_str(obj, "target_branch", 255, required=False),
        head_repository=(source.get("path_with_namespace") or str(source_project)) if is_fork else None,
        labels=_gitlab_labels(obj),
    )


class GitLabClient:
    """GitLab REST API v4 of one host (``https://{host}/api/v4`` unless configured)."""

    kind = "gitlab"

    def __init__(self, api_url: str, token: str | None, transport=None):
        headers = {"User-Agent": "backlog-commons"}
        if token:
            headers["PRIVATE-TOKEN"] = token
        self.http = ForgeHttp(api_url, headers, transport)

    def _project(self, repo) -> str:
        # Calls use the numeric project id once known; the path only to learn it.
        if repo.forge_id:
            return str(repo.forge_id)
        return quote(f"{repo.owner}/{repo.name}", safe="")

    def repository_info(self, repo) -> RepositoryInfo:
        """``GET /projects/:id`` (id or URL-encoded path)."""
        data = self.http.get_json(f"/projects/{self._project(repo)}")
        path = _str(data, "path_with_namespace", 511)
        owner, _, name = path.rpartition("/")
        return RepositoryInfo(_id(data, "id"), owner, name, _str(data, "default_branch", 255, required=False),
                              visibility=project_visibility(data))

    def issue(self, repo, iid: int) -> ForgeIssue:
        """``GET /projects/:id/issues/:iid``: the issue as the forge holds it now.

        Raises :class:`ForgeError` (``NotFound`` when it is gone) and :class:`ForgePayloadError`.
        """
        return parse_issue(self.http.get_json(f"/projects/{self._project(repo)}/issues/{iid}"))

    def issue_pages(self, repo, since, cache):
        params = {"scope": "all", "order_by": "updated_at", "sort": "desc", "per_page": "100"}
        if since is not None:
            params["updated_after"] = since.replace(microsecond=0).isoformat() + "Z"
        yield from self.http.pages(f"/projects/{self._project(repo)}/issues", params, cache)

    def pull_pages(self, repo, cache):
        params = {"state": "all", "scope": "all", "order_by": "updated_at", "sort": "desc", "per_page": "100"}
        yield from self.http.pages(f"/projects/{self._project(repo)}/merge_requests", params, cache)

    def merge_request(self, repo, iid: int) -> dict:
        """``GET /projects/:id/merge_requests/:iid``."""
        return self.http.get_json(f"/projects/{self._project(repo)}/merge_requests/{iid}")

    def pull_reviews(self, repo, iid: int) -> list[ForgeReview]:
        """``GET /projects/:id/merge_requests/:iid/approvals``: the approvals standing now
        on merge request ``iid`` (issue 19), one :class:`ForgeReview` (``approved``) per
        approver, ``submitted_at`` their ``approved_at`` (GitLab 17.x and later) or else
        the merge request's ``updated_at``. A withdrawn approval is simply absent.
        Raises :class:`ForgeError` (``NotFound`` when it is gone)."""
        data = self.http.get_json(f"/projects/{self._project(repo)}/merge_requests/{iid}/approvals")
        if not isinstance(data, dict):
            raise ForgePayloadError("the approvals of a merge request are not an object")
        fallback = _time(data, "updated_at", required=False)
        found = []
        for row in data.get("approved_by") or []:
            user = row.get("user") if isinstance(row, dict) else None
            if not isinstance(user, dict) or not isinstance(user.get("id"), int):
                continue
            at = _time(row, "approved_at", required=False) or fallback
            found.append(ForgeReview(reviewer_forge_id=user["id"], state="approved", body="", submitted_at=at))
        return found

    def issue_deleted(self, repo, number: int) -> bool:
        """Whether ``GET /projects/:id/issues/:iid`` answers 404 for an issue the
        project's list no longer shows: GitLab deletes issues (a moved issue
        stays, closed, with ``moved_to_id``). Raises :class:`ForgeError` otherwise."""
        try:
            self.http.get_json(f"/projects/{self._project(repo)}/issues/{number}")
        except NotFound:
            return True
        return False

    # --- writes (issue 22: the living comment and label; REST "Notes", "Issues") ---

    def list_comments(self, repo, iid: int) -> list[tuple[int, str]]:
        """``GET /projects/:id/issues/:iid/notes``, every page: ``[(note id, body)]``."""
        found = []
        for page in self.http.pages(f"/projects/{self._project(repo)}/issues/{iid}/notes",
                                    {"per_page": "100"}, None):
            found += [(n["id"], n.get("body") or "") for n in page.items or [] if isinstance(n.get("id"), int)]
        return found

    def post_comment(self, repo, iid: int, body: str) -> tuple[int, str | None]:
        """``POST /projects/:id/issues/:iid/notes``: ``(note id, None)``. A note has no
        web address of its own in the answer: it is the issue's ``web_url`` +
        ``#note_<id>`` (:func:`marketplace.presence.service.comment_url`)."""
        data = self.http.write_json("POST", f"/projects/{self._project(repo)}/issues/{iid}/notes", {"body": body})
        return _id(data, "id"), None

    def edit_comment(self, repo, iid: int, note_id: int, body: str) -> None:
        """``PUT /projects/:id/issues/:iid/notes/:note_id``; ``NotFound`` when deleted."""
        self.http.write_json("PUT", f"/projects/{self._project(repo)}/issues/{iid}/notes/{note_id}",
                             {"body": body})

    def set_label(self, repo, iid: int, label: str, present: bool) -> None:
        """``PUT /projects/:id/issues/:iid`` with ``add_labels`` or ``remove_labels``."""
        key = "add_labels" if present else "remove_labels"
        self.http.write_json("PUT", f"/projects/{self._project(repo)}/issues/{iid}", {key: label})

    @staticmethod
    def parse_list_item(obj: dict):
        return parse_issue(obj)

    @staticmethod
    def parse_pull(obj: dict) -> ForgePullRequest:
        return parse_merge_request(obj)

    def close(self) -> None:
        self.http.close()
