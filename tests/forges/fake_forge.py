"""A local HTTP server that answers like GitHub's or GitLab's REST API.

Lists are served from in-memory objects, sorted by ``updated_at`` and paged
with ``Link`` headers exactly as the forges do; each answer carries an ETag
and a conditional request on an unchanged page gets 304. Tests can queue
error answers (rate limits, 403, 404) and read every request received.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: dict
    headers: dict
    status: int
    body: object = None  # the JSON a write sent (issue 22)


@dataclass
class Canned:
    """An answer served instead of the normal one, for requests whose path starts with ``prefix``."""

    prefix: str
    status: int
    headers: dict = field(default_factory=dict)
    body: object = field(default_factory=lambda: {"message": "error"})
    times: int = 1
    method: str | None = None  # None: any method


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" UTC", "+00:00")).replace(tzinfo=None)


class FakeForge:
    """Serve ``repos``: {(owner, name): {"id", "default_branch", "issues": [...], "pulls": [...]}};
    an optional ``"former_paths": ["owner/old-name"]`` answers for the repository's former names;
    ``"reviews": {number: [review, ...]}`` (GitHub) and ``"approvals": {iid: {...}}`` (GitLab)
    answer a pull request's reviews and a merge request's approvals."""

    def __init__(self, kind: str = "github"):
        self.kind = kind
        self.repos: dict[tuple[str, str], dict] = {}
        self.canned: list[Canned] = []
        self.received: list[Received] = []
        self.ignore_if_none_match = False  # answer 304 to every conditional request
        self.app_public_key = None  # PEM: POST /app/installations/{id}/access_tokens checks the JWT
        self.app_id = None
        # OAuth provider: authorization code -> the user it stands for ({"id", "login"|"username"}).
        self.oauth_codes: dict[str, dict] = {}
        self._oauth_tokens: dict[str, dict] = {}
        # Issue comments and labels (issue 22), keyed by (repository key, issue number):
        # GitHub ("owner", "name"), GitLab the project id as a string.
        self.comments: dict[tuple, list[dict]] = {}
        self.labels: dict[tuple, set[str]] = {}
        self.next_comment_id = 70_000_001
        # Path prefixes whose next write is made, then answered 502 (the answer is lost).
        self.lose_answer: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}" + ("/api/v4" if self.kind == "gitlab" else "")

    def start(self) -> "FakeForge":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, prefix: str, status: int, headers: dict | None = None, body=None, times: int = 1,
             method: str | None = None) -> None:
        self.canned.append(Canned(prefix, status, headers or {}, body or {"message": "error"}, times, method))

    def writes(self) -> list[Received]:
        """Every write received (POST, PATCH, PUT, DELETE) but the App's token requests."""
        return [r for r in self.received if r.method != "GET" and "/access_tokens" not in r.path]

    def all_comments(self) -> list[dict]:
        return [c for rows in self.comments.values() for c in rows]

    def delete_comment(self, comment_id: int) -> None:
        """A person deletes a comment on the forge."""
        for rows in self.comments.values():
            rows[:] = [c for c in rows if c["id"] != comment_id]

    # -- comments and labels (issue 22) -----------------------------------
    def _issue_key(self, parts: list[str]):
        """(key, number, rest) for .../issues/{n}/... paths of either forge, or None."""
        if self.kind == "github" and len(parts) >= 5 and parts[0] == "repos" and parts[3] == "issues":
            ident, repo = self._find_repo((parts[1].lower(), parts[2].lower()))
            return (ident, parts[4], parts[5:]) if repo else None
        if self.kind == "gitlab" and len(parts) >= 6 and parts[:3] == ["api", "v4", "projects"] and parts[4] == "issues":
            from urllib.parse import unquote

            ident, repo = self._find_repo(unquote(parts[3]).lower())
            return (str(repo["id"]), parts[5], parts[6:]) if repo else None
        return None

    def _write(self, method: str, path: str, body) -> tuple[int, object]:
        for canned in self.canned:
            if path.startswith(canned.prefix) and canned.times > 0 and canned.method in (None, method):
                canned.times -= 1
                return canned.status, canned.body, canned.headers
        parts = path.strip("/").split("/")
        found = self._issue_key(parts)
        if found is None:
            return 404, {"message": "Not Found"}, {}
        key, number, rest = found
        comments = self.comments.setdefault((key, number), [])
        labels = self.labels.setdefault((key, number), set())
        body = body if isinstance(body, dict) else {}
        if self.kind == "github" and number == "comments" and len(rest) == 1 and method == "PATCH":
            for rows in self.comments.values():
                for comment in rows:
                    if str(comment["id"]) == rest[0]:
                        comment["body"] = body.get("body", "")
                        return 200, comment, {}
            return 404, {"message": "Not Found"}, {}
        if rest == ["comments" if self.kind == "github" else "notes"] and method == "POST":
            comment = {"id": self.next_comment_id, "body": body.get("body", ""),
                       "html_url": f"https://github.com/{parts[1]}/{parts[2]}/issues/{number}"
                                   f"#issuecomment-{self.next_comment_id}"}
            self.next_comment_id += 1
            comments.append(comment)
            return 201, comment, {}
        if self.kind == "gitlab" and len(rest) == 2 and rest[0] == "notes" and method == "PUT":
            for comment in comments:
                if str(comment["id"]) == rest[1]:
                    comment["body"] = body.get("body", "")
                    return 200, comment, {}
            return 404, {"message": "404 Not found"}, {}
        if self.kind == "github" and rest[:1] == ["labels"]:
            if method == "POST":
                labels.update(body.get("labels", []))
                return 200, [{"name": n} for n in sorted(labels)], {}
            if method == "DELETE" and len(rest) == 2:
                from urllib.parse import unquote

                if unquote(rest[1]) not in labels:
                    return 404, {"message": "Label does not exist"}, {}
                labels.discard(unquote(rest[1]))
                return 200, [{"name": n} for n in sorted(labels)], {}
        if self.kind == "gitlab" and not rest and method == "PUT":
            labels.update(x for x in (body.get("add_labels") or "").split(",") if x)
            labels.difference_update(x for x in (body.get("remove_labels") or "").split(",") if x)
            return 200, {"iid": int(number), "labels": sorted(labels)}, {}
        return 404, {"message": "Not Found"}, {}

    def _comments_list(self, path: str):
        parts = path.strip("/").split("/")
        found = self._issue_key(parts)
        if found is None:
            return None
        key, number, rest = found
        if rest == ["comments" if self.kind == "github" else "notes"]:
            return 200, {}, list(self.comments.get((key, number), []))
        return None

    def non_304(self) -> list[Received]:
        return [r for r in self.received if r.status != 304]

    # -- request handling -------------------------------------------------
    def _answer(self, path: str, query: dict, headers: dict) -> tuple[int, dict, object]:
        if path in ("/user", "/api/v4/user"):
            token = (headers.get("Authorization") or "").removeprefix("Bearer ").removeprefix("token ")
            user = self._oauth_tokens.get(token)
            return (200, {}, user) if user else (401, {}, {"message": "Bad credentials"})
        for canned in self.canned:
            if path.startswith(canned.prefix) and canned.times > 0 and canned.method in (None, "GET"):
                canned.times -= 1
                return canned.status, canned.headers, canned.body
        listed = self._comments_list(path)
        if listed is not None:
            return listed
        if self.kind == "github":
            return self._github(path, query)
        return self._gitlab(path, query)

    def _find_repo(self, key):
        for (owner, name), repo in self.repos.items():
            if (self.kind == "github" and (owner.lower(), name.lower()) == key) or (
                self.kind == "gitlab" and key in (str(repo["id"]), f"{owner}/{name}".lower())
            ):
                return (owner, name), repo
        # A former path answers with the repository that now holds it (GitHub
        # redirects, GitLab keeps redirect routes), unless a repository took it.
        for (owner, name), repo in self.repos.items():
            former = [tuple(path.lower().split("/", 1)) if self.kind == "github" else path.lower()
                      for path in repo.get("former_paths", [])]
            if key in former:
                return (owner, name), repo
        return None, None

    def _github(self, path, query):
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos":
            return 404, {}, {"message": "Not Found"}
        ident, repo = self._find_repo((parts[1].lower(), parts[2].lower()))
        if repo is None:
            return 404, {}, {"message": "Not Found"}
        if len(parts) == 3:
            answer = {"id": repo["id"], "name": ident[1], "full_name": f"{ident[0]}/{ident[1]}",
                      "owner": {"login": ident[0]}, "default_branch": repo.get("default_branch", "main")}
            if "visibility" in repo:
                answer.update(visibility=repo["visibility"], private=repo["visibility"] != "public")
            return 200, {}, answer
        if parts[3] == "collaborators" and len(parts) == 6 and parts[5] == "permission":
            permission = repo.get("permissions", {}).get(parts[4])
            if permission is None:
                return 404, {}, {"message": "Not Found"}
            return 200, {}, {"permission": permission,
                             "user": {"login": parts[4], "id": repo.get("user_ids", {}).get(parts[4])}}
        if parts[3] == "issues" and len(parts) == 4:
            rows = repo["issues"]
            since = query.get("since")
            if since:
                rows = [r for r in rows if _ts(r["updated_at"]) >= _ts(since)]
            return self._page(path, query, rows)
        if parts[3] == "issues" and len(parts) == 5:
            found = [r for r in repo["issues"] if str(r["number"]) == parts[4]]
            if found:
                return 200, {}, found[0]
            if int(parts[4]) in repo.get("deleted_issues", ()):
                return 410, {}, {"message": "This issue was deleted"}
            return 404, {}, {"message": "Not Found"}
        if parts[3] == "pulls" and len(parts) == 4:
            if repo.get("pulls_disabled"):
                return 404, {}, {"message": "Not Found"}
            return self._page(path, query, repo["pulls"])
        if parts[3] == "pulls" and len(parts) == 6 and parts[5] == "reviews":
            # GET /repos/{owner}/{repo}/pulls/{number}/reviews: oldest first, paged by per_page.
            reviews = repo.get("reviews", {}).get(int(parts[4]))
            if reviews is None:
                return 404, {}, {"message": "Not Found"}
            return self._page_in_order(path, query, reviews)
        return 404, {}, {"message": "Not Found"}

    def _gitlab(self, path, query):
        parts = path.strip("/").split("/")
        # /api/v4/projects/:id[/issues|/merge_requests[/iid]]
        if len(parts) < 4 or parts[:3] != ["api", "v4", "projects"]:
            return 404, {}, {"message": "404 Not Found"}
        from urllib.parse import unquote

        ident, repo = self._find_repo(unquote(parts[3]).lower())
        if repo is None:
            return 404, {}, {"message": "404 Project Not Found"}
        if len(parts) == 4:
            answer = {"id": repo["id"], "path_with_namespace": f"{ident[0]}/{ident[1]}",
                      "default_branch": repo.get("default_branch", "main")}
            if "visibility" in repo:
                answer["visibility"] = repo["visibility"]
            return 200, {}, answer
        if parts[4] == "merge_requests" and len(parts) == 7 and parts[6] == "approvals":
            # GET /projects/:id/merge_requests/:iid/approvals: the approvals standing now.
            approvals = repo.get("approvals", {}).get(int(parts[5]))
            return (200, {}, approvals) if approvals is not None else (404, {}, {"message": "404 Not found"})
        rows = repo["issues"] if parts[4] == "issues" else repo["pulls"]
        if parts[4] == "merge_requests" and repo.get("pulls_disabled"):
            return 404, {}, {"message": "404 Not Found"}
        if len(parts) == 6:
            found = [r for r in rows if str(r["iid"]) == parts[5]]
            return (200, {}, found[0]) if found else (404, {}, {"message": "404 Not Found"})
        after = query.get("updated_after")
        if after:
            rows = [r for r in rows if _ts(r["updated_at"]) >= _ts(after)]
        return self._page(path, query, rows)

    def _page(self, path, query, rows):
        rows = sorted(rows, key=lambda r: (_ts(r["updated_at"]), r.get("number") or r.get("iid")), reverse=True)
        per_page = int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
        chunk = rows[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(rows):
            next_query = dict(query, page=str(page + 1))
            base = self.url.removesuffix("/api/v4")
            headers["Link"] = f'<{base}{path}?{urlencode(next_query)}>; rel="next"'
        return 200, headers, chunk

    def _page_in_order(self, path, query, rows):
        """``rows`` as given (no sorting), paged with ``Link`` like :meth:`_page`."""
        per_page = int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
        headers = {}
        if page * per_page < len(rows):
            base = self.url.removesuffix("/api/v4")
            headers["Link"] = f'<{base}{path}?{urlencode(dict(query, page=str(page + 1)))}>; rel="next"'
        return 200, headers, rows[(page - 1) * per_page: page * per_page]

    def _handler(self):
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                status, headers, body = forge._answer(split.path, query, dict(self.headers))
                raw = json.dumps(body).encode()
                etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
                if status == 200 and (
                    self.headers.get("If-None-Match") == etag
                    or (forge.ignore_if_none_match and self.headers.get("If-None-Match"))
                ):
                    status, raw = 304, b""
                forge.received.append(Received("GET", split.path, query, dict(self.headers), status))
                self.send_response(status)
                if status == 200:
                    self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):  # noqa: N802
                import jwt

                parts = urlsplit(self.path).path.strip("/").split("/")
                status, body = 404, {"message": "Not Found"}
                length = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(length)
                form = {k: v[-1] for k, v in parse_qs(raw_body.decode()).items()}
                if urlsplit(self.path).path in ("/login/oauth/access_token", "/oauth/token"):
                    user = forge.oauth_codes.pop(form.get("code", ""), None)  # codes work once
                    if user is None:
                        status, body = 200, {"error": "bad_verification_code"}
                    else:
                        token = "oauth-" + hashlib.sha256(form["code"].encode()).hexdigest()[:20]
                        forge._oauth_tokens[token] = user
                        status, body = 200, {"access_token": token, "token_type": "bearer", "scope": "read:user"}
                elif len(parts) == 4 and parts[:2] == ["app", "installations"] and parts[3] == "access_tokens":
                    auth = self.headers.get("Authorization", "")
                    try:
                        claims = jwt.decode(auth.removeprefix("Bearer "), forge.app_public_key, algorithms=["RS256"])
                        assert claims["iss"] == str(forge.app_id)
                        status, body = 201, {"token": f"ghs_installation_{parts[2]}",
                                             "expires_at": "2099-01-01T00:00:00Z"}
                    except Exception as exc:  # noqa: BLE001
                        status, body = 401, {"message": f"bad JWT: {exc}"}
                if status == 404 and forge._issue_key(parts) is not None:
                    return self._write("POST", raw_body)
                forge.received.append(Received("POST", urlsplit(self.path).path, {}, dict(self.headers), status))
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_PATCH(self):  # noqa: N802
                self._write("PATCH", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_PUT(self):  # noqa: N802
                self._write("PUT", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_DELETE(self):  # noqa: N802
                self._write("DELETE", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _write(self, method: str, raw_body: bytes):
                path = urlsplit(self.path).path
                try:
                    sent = json.loads(raw_body) if raw_body else None
                except ValueError:
                    sent = None
                status, body, headers = forge._write(method, path, sent)
                lost = [p for p in forge.lose_answer if path.startswith(p)]
                if lost and status < 400:
                    forge.lose_answer.remove(lost[0])
                    status, body = 502, {"message": "Bad Gateway"}
                forge.received.append(Received(method, path, {}, dict(self.headers), status, sent))
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        return Handler


def github_issue(owner: str, repo: str, number: int, *, forge_id: int | None = None, updated_at: str,
                 state: str = "open", title: str | None = None, body: str | None = None,
                 pull: bool = False, merged_at: str | None = None, created_at: str | None = None,
                 state_reason: str | None = None, labels=()) -> dict:
    """An element of ``GET /repos/{owner}/{repo}/issues`` (issue or pull request)."""
    obj = {
        "url": f"https://api.github.com/repos/{owner}/{repo}/issues/{number}",
        "repository_url": f"https://api.github.com/repos/{owner}/{repo}",
        "html_url": f"https://github.com/{owner}/{repo}/{'pull' if pull else 'issues'}/{number}",
        "id": forge_id or 5_000_000 + number,
        "number": number,
        "title": title or f"Issue {number}",
        "user": {"login": "user-1", "id": 1},
        "labels": [{"name": name} for name in labels],
        "state": state,
        "state_reason": state_reason,
        "locked": False,
        "comments": 0,
        "created_at": created_at or "2020-01-01T00:00:00Z",
        "updated_at": updated_at,
        "closed_at": updated_at if state == "closed" else None,
        "body": body,
    }
    if pull:
        obj["pull_request"] = {"url": f"https://api.github.com/repos/{owner}/{repo}/pulls/{number}",
                               "merged_at": merged_at}
    return obj


def github_pull(owner: str, repo: str, number: int, *, updated_at: str, base: str = "main", body: str = "",
                state: str = "open", merged_at: str | None = None, title: str | None = None) -> dict:
    """An element of ``GET /repos/{owner}/{repo}/pulls``."""
    return {
        "id": 9_000_000 + number,
        "number": number,
        "html_url": f"https://github.com/{owner}/{repo}/pull/{number}",
        "state": state,
        "title": title or f"Pull request {number}",
        "body": body,
        "user": {"login": "user-2", "id": 2},
        "labels": [],
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": updated_at,
        "closed_at": merged_at,
        "merged_at": merged_at,
        "base": {"ref": base, "repo": {"full_name": f"{owner}/{repo}"}},
        "head": {"ref": "feature", "repo": {"full_name": f"{owner}/{repo}"}},
    }
