"""A local stand-in for GitHub, for ``make run``, the demo and the tests. Never used in production.

It answers what the commons asks of GitHub:

- the OAuth web flow of "Connect GitHub": ``GET /login/oauth/authorize``
  shows a page where the person picks or types a GitHub login (each login
  gets a stable numeric id), then sends the browser to ``redirect_uri`` with
  ``code`` and ``state``; ``POST /login/oauth/access_token`` exchanges the
  code (client authenticated by HTTP Basic or form fields, as Authlib sends
  it) for ``{"access_token", "token_type": "bearer", "scope"}``; ``GET /user``
  answers the token's user in GitHub's shape (``login``, numeric ``id``);
- the REST calls the app may make while processing deliveries:
  ``GET /repos/{owner}/{repo}``, ``GET /repos/{owner}/{repo}/pulls/{number}``,
  ``GET /repos/{owner}/{repo}/pulls/{number}/reviews`` (what sync reads when a
  review delivery was missed; :meth:`LocalForge.review_pull_request` submits
  one) and ``GET /repos/{owner}/{repo}/collaborators/{login}/permission``;
- the writes of the living comment and label (issue 22): ``GET`` and ``POST
  /repos/{owner}/{repo}/issues/{number}/comments``, ``PATCH
  /repos/{owner}/{repo}/issues/comments/{id}``, ``POST
  /repos/{owner}/{repo}/issues/{number}/labels`` and ``DELETE
  …/labels/{name}``; the issue page shows the comments and labels, and lets
  a person comment (``/claim``…), which sends the signed ``issue_comment``
  delivery.

And it plays the people on the forge: for each repository, a page
(``/{owner}/{repo}``, and ``/{owner}/{repo}/issues/{number}`` for one issue)
to open a pull request that fixes an issue ("Fixes #N" in its body), and a
page per pull request to merge or close it. Each action sends the real,
signed ``pull_request`` delivery (``opened``; ``closed`` with ``merged``
true or false) to the app's ``/webhooks/github``, signed as GitHub signs
(``X-Hub-Signature-256: sha256=HMAC-SHA256(secret, body)``) with
``X-GitHub-Event`` and a fresh ``X-GitHub-Delivery`` — the production path.

Repository ids: a delivery names its repository by numeric id, and the app
matches by that id once it knows one. ``repositories`` (a callable, see
:func:`repositories_in_database`) tells the forge the app's GitHub
repositories ``{full_name: {"id": int | None, "max_number": int}}``: the forge
uses the app's id when it has one (else its own, which the app learns on the
first delivery) and numbers new pull requests above every issue and pull
request number the app holds (GitHub numbers both in one sequence).

Merging a pull request also closes the issue its body names ("Fixes #N"), as
GitHub does for a merge into the default branch: after the ``pull_request``
``closed`` delivery comes the ``issues`` ``closed`` delivery with
``state_reason: "completed"``. Its issue is the app's own (``issues``, a
callable, see :func:`issues_in_database`: its id, title, body, labels and
author), so the delivery changes nothing but the state; it is stamped at the
merge, or a second after the app's last update of the issue when that is later,
so the app never takes it for stale. An issue the app does not hold, or holds
closed, gets no delivery.

Every page says it is a local stand-in; nothing reaches GitHub.
"""
from __future__ import annotations

import base64
import calendar
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.forges.models import Repository
from marketplace.standins import LOCAL_OAUTH_CLIENT_ID
from marketplace.standins.base import StandInServer, read_state, write_state

# GitHub logins: letters, digits and single hyphens, not at either end, at most 39 characters.
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_NAME = r"[A-Za-z0-9_.-]+"
_REPO_PAGE = re.compile(rf"/({_NAME})/({_NAME})")
_ISSUE_PAGE = re.compile(rf"/({_NAME})/({_NAME})/issues/(\d+)")
_PULL_PAGE = re.compile(rf"/({_NAME})/({_NAME})/pull/(\d+)")
_PULL_ACTION = re.compile(rf"/({_NAME})/({_NAME})/pull/(\d+)/(merge|close)")
_OPEN_PULL = re.compile(rf"/({_NAME})/({_NAME})/pulls")
_ADMINS = re.compile(rf"/({_NAME})/({_NAME})/admins")
_API_REPO = re.compile(rf"/repos/({_NAME})/({_NAME})")
_API_PULL = re.compile(rf"/repos/({_NAME})/({_NAME})/pulls/(\d+)")
_API_REVIEWS = re.compile(rf"/repos/({_NAME})/({_NAME})/pulls/(\d+)/reviews")
_API_PERMISSION = re.compile(rf"/repos/({_NAME})/({_NAME})/collaborators/({_NAME})/permission")
_API_COMMENTS = re.compile(rf"/repos/({_NAME})/({_NAME})/issues/(\d+)/comments")
_API_COMMENT = re.compile(rf"/repos/({_NAME})/({_NAME})/issues/comments/(\d+)")
_API_LABELS = re.compile(rf"/repos/({_NAME})/({_NAME})/issues/(\d+)/labels(?:/([^/]+))?")
_COMMENT_FORM = re.compile(rf"/({_NAME})/({_NAME})/issues/(\d+)/comments")
_FIRST_COMMENT_ID = 4_000_000_001

CODE_LIFETIME_SECONDS = 600  # GitHub's authorization codes expire after ten minutes
# The client secret the local forge expects with LOCAL_OAUTH_CLIENT_ID (not a secret: nothing real is behind it).
LOCAL_OAUTH_CLIENT_SECRET = "local-forge-secret"
_FIRST_PULL_ID = 3_000_000_001
_FIRST_REVIEW_ID = 5_000_000_001
_REVIEW_STATES = {"APPROVED": "approved", "CHANGES_REQUESTED": "changes_requested", "COMMENTED": "commented"}


class ForgeError(ValueError):
    """A forge action refused (unknown pull request, bad login, already merged); the message says why."""


def stable_id(kind: str, name: str) -> int:
    """A numeric id for ``name`` (a login or a repository's full name) that never changes:
    the first 4 bytes of SHA-256 of ``kind:name`` (lower case), above 100 000 000."""
    digest = hashlib.sha256(f"{kind}:{name.lower()}".encode()).digest()
    return 100_000_000 + int.from_bytes(digest[:4], "big")


def _http(url: str | None) -> bool:
    """An http(s) address (where the authorize page may send the browser back)."""
    return bool(url) and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).netloc)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _second_after(stamp: str | None) -> str:
    """The second after ``stamp`` (``YYYY-MM-DDTHH:MM:SSZ``, UTC) in that form; "" for none.
    Stamps of this one form compare as text as they do as times."""
    if not stamp:
        return ""
    seconds = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds + 1))


def _node_id(prefix: str, number: int) -> str:
    return prefix + base64.b64encode(f"local:{number}".encode()).decode().rstrip("=")


def page(title: str, body: str) -> str:
    """A forge page: ``title`` (plain text) and ``body`` (HTML), labelled as a local stand-in for GitHub."""
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)} · local stand-in for GitHub</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:1rem auto;padding:0 1rem;"
            "line-height:1.5;color:#1f2328}.standin{background:#fff3cd;color:#3d2e00;border:1px solid #8a6d00;"
            "padding:.5rem}button{font-size:1rem;padding:.4rem 1rem;margin:.2rem 0}"
            "input,select{font-size:1rem;padding:.3rem;max-width:100%;box-sizing:border-box}"
            "pre{white-space:pre-wrap;overflow-wrap:anywhere}"
            "label{display:block;margin-top:.6rem;font-weight:600}table{border-collapse:collapse;width:100%}"
            "td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #d0d7de;vertical-align:top}"
            ".wrap{overflow-x:auto}.note{color:#59636e}a{color:#0550ae}</style></head><body>"
            "<p class=standin role=note><strong>Local stand-in for GitHub.</strong> "
            "No real GitHub is involved; nothing leaves this computer. <a href='/'>Local forge home</a></p>"
            f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>")


def repositories_in_database(database_uri: str) -> Callable[[], dict[str, dict]]:
    """A callable reading the app's GitHub repositories from its database:
    ``{full_name: {"id": forge id or None, "max_number": highest issue or
    pull request number held (0 when none)}}``. For ``make run``, where the
    forge and the app share a laptop; the engine is made on first use."""
    engine = None

    def read() -> dict[str, dict]:
        nonlocal engine
        if engine is None:
            engine = create_engine(database_uri)
        repository = Repository.__table__
        items = select(BacklogItem.repository_id.label("rid"), BacklogItem.number.label("number"))
        pulls = select(PullRequest.repository_id.label("rid"), PullRequest.number.label("number"))
        numbers = items.union_all(pulls).subquery()
        highest = select(numbers.c.rid, func.max(numbers.c.number).label("top")).group_by(numbers.c.rid).subquery()
        query = (select(repository.c.owner, repository.c.name, repository.c.forge_id, highest.c.top)
                 .outerjoin(highest, highest.c.rid == repository.c.id)
                 .where(repository.c.host == "github.com"))
        with engine.connect() as connection:
            return {f"{owner}/{name}": {"id": forge_id, "max_number": top or 0}
                    for owner, name, forge_id, top in connection.execute(query)}

    return read


def issue_fields(item: BacklogItem) -> dict:
    """What the local forge needs of an issue the app holds, from its backlog item:
    ``{"id", "number", "title", "body", "state", "labels": [names], "author_login",
    "author_id", "html_url", "created_at": "YYYY-MM-DDTHH:MM:SSZ", "updated_at" (the
    same form, the forge's time the app holds), "comments"}``."""
    return {"id": item.forge_id, "number": item.number, "title": item.title, "body": item.body,
            "state": item.state.value, "labels": sorted(label.name for label in item.labels),
            "author_login": item.author_login, "author_id": item.author_forge_id, "html_url": item.html_url,
            "created_at": item.forge_created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": item.forge_updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "comments": item.comments_count}


def issues_in_database(database_uri: str) -> Callable[[str, int], dict | None]:
    """A callable reading one GitHub issue of the app's backlog from its database:
    ``(full_name, number) → issue_fields(item)``, or None when the app holds no
    such issue (or holds it deleted). For ``make run``; the engine is made on first use."""
    engine = None

    def read(full_name: str, number: int) -> dict | None:
        nonlocal engine
        if engine is None:
            engine = create_engine(database_uri)
        with Session(engine) as session:
            item = session.scalar(
                select(BacklogItem).join(Repository, Repository.id == BacklogItem.repository_id)
                .where(Repository.host == "github.com", Repository.path_key == full_name.lower(),
                       BacklogItem.number == number, BacklogItem.deleted_at.is_(None)))
            return issue_fields(item) if item is not None else None

    return read


def _post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    """POST a delivery; returns (HTTP status, the start of the answer). Raises ``OSError`` when unreachable."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  (the app's own address)
            return response.status, response.read(500).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(500).decode(errors="replace")


class LocalForge(StandInServer):
    """The server; ``url`` is its base address.

    ``webhook_url`` and ``webhook_secret``: where and with what secret the
    deliveries go (None: no delivery is sent). ``state_path``: a JSON file
    holding the users, repositories, pull requests and tokens, loaded at
    start and written by :meth:`save` (atomically). ``repositories``: see the
    module's docstring; None when the forge knows only its own. ``send(url,
    body, headers) -> (status, answer)`` posts a delivery (default: over HTTP;
    a test passes the app's test client).
    """

    STATE = ("users", "repos", "tokens", "deliveries", "next_pull_id", "comments", "labels", "next_comment_id",
             "next_review_id")

    def __init__(self, host: str = "127.0.0.1", port: int = 0, webhook_url: str | None = None,
                 webhook_secret: str | None = None, state_path: str | None = None,
                 repositories: Callable[[], dict[str, dict]] | None = None,
                 send: Callable[[str, bytes, dict], tuple[int, str]] | None = None,
                 issues: Callable[[str, int], dict | None] | None = None):
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.send = send or _post
        self.state_path = state_path
        self.repositories = repositories
        self.issues = issues  # (full name, number) → the app's issue (issue_fields), or None
        self.users: dict[str, dict] = {}  # lower-case login → {"login", "id"}
        # lower-case full name → {"full_name", "id", "default_branch", "admins", "pulls", "max_number"}
        self.repos: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}  # access token → lower-case login
        self.deliveries: list[dict] = []  # the latest deliveries sent, newest last
        self.next_pull_id = _FIRST_PULL_ID
        # Issue comments and labels, by "owner/name#number" (lower case).
        self.comments: dict[str, list[dict]] = {}  # {"id", "author", "body", "created_at", "updated_at"}
        self.labels: dict[str, list[str]] = {}
        self.next_comment_id = _FIRST_COMMENT_ID
        self.next_review_id = _FIRST_REVIEW_ID
        self.codes: dict[str, dict] = {}  # authorization code → grant (not kept: ten minutes)
        self._lock = threading.RLock()
        if state_path:
            self._load()
        self._serve(host, port, self._handler())

    # --- state ----------------------------------------------------------------------------

    def _load(self) -> None:
        saved = read_state(self.state_path)
        with self._lock:
            for name in self.STATE:
                if name in saved:
                    setattr(self, name, saved[name])

    def save(self) -> None:
        """Write the users, repositories, pull requests and tokens to ``state_path``
        (a temporary file renamed over it), so a restarted ``make run`` keeps them."""
        if not self.state_path:
            return
        with self._lock:
            write_state(self.state_path, copy.deepcopy({name: getattr(self, name) for name in self.STATE}))

    def app_config(self, webhook_secret: str) -> dict:
        """The app settings that point the app at this forge: the OAuth client
        (``LOCAL_OAUTH_CLIENT_ID``), the OAuth and API addresses, and the
        secret the deliveries are signed with."""
        return {"GITHUB_OAUTH_URL": self.url, "GITHUB_API_URL": self.url,
                "GITHUB_OAUTH_CLIENT_ID": LOCAL_OAUTH_CLIENT_ID,
                "GITHUB_OAUTH_CLIENT_SECRET": LOCAL_OAUTH_CLIENT_SECRET,
                "GITHUB_WEBHOOK_SECRET": webhook_secret}

    # --- people -----------------------------------------------------------------------------

    def authorize(self, login: str) -> int:
        """The forge user ``login`` (created on first use); returns its numeric id, the same
        for every later call and restart. Raises :class:`ForgeError` for a login GitHub would refuse."""
        if not isinstance(login, str) or not _LOGIN.fullmatch(login):
            raise ForgeError("A GitHub login is 1 to 39 letters, digits or single hyphens, "
                             "not starting or ending with a hyphen.")
        with self._lock:
            user = self.users.get(login.lower())
            if user is None:
                taken = {u["id"] for u in self.users.values()}
                user_id = stable_id("user", login)
                while user_id in taken:
                    user_id += 1
                user = self.users[login.lower()] = {"login": login, "id": user_id}
            return user["id"]

    def _user_object(self, login: str) -> dict:
        user = self.users[login.lower()]
        return {"login": user["login"], "id": user["id"], "node_id": _node_id("U_", user["id"]),
                "avatar_url": "", "gravatar_id": "", "url": f"{self.url}/users/{user['login']}",
                "html_url": f"{self.url}/{user['login']}", "type": "User", "site_admin": False}

    def grant_code(self, login: str, client_id: str, redirect_uri: str) -> str:
        """An authorization code for ``login`` (what the authorize page's button does)."""
        self.authorize(login)
        code = secrets.token_hex(10)
        with self._lock:
            self.codes[code] = {"login": login.lower(), "client_id": client_id, "redirect_uri": redirect_uri,
                                "expires": time.time() + CODE_LIFETIME_SECONDS}
        return code

    def exchange_code(self, code: str, client_id: str, client_secret: str, redirect_uri: str | None) -> dict:
        """``POST /login/oauth/access_token``: the token answer, or GitHub's error answer
        (``{"error": "bad_verification_code" | "incorrect_client_credentials" | "redirect_uri_mismatch"}``)."""
        if client_id != LOCAL_OAUTH_CLIENT_ID or client_secret != LOCAL_OAUTH_CLIENT_SECRET:
            return {"error": "incorrect_client_credentials",
                    "error_description": "The client_id and/or client_secret passed are incorrect."}
        with self._lock:
            grant = self.codes.pop(code, None)
            if grant is None or grant["expires"] < time.time() or grant["client_id"] != client_id:
                return {"error": "bad_verification_code",
                        "error_description": "The code passed is incorrect or expired."}
            if redirect_uri and redirect_uri != grant["redirect_uri"]:
                return {"error": "redirect_uri_mismatch",
                        "error_description": "The redirect_uri MUST match the registered callback URL."}
            token = "gho_local_" + secrets.token_hex(16)
            self.tokens[token] = grant["login"]
        return {"access_token": token, "token_type": "bearer", "scope": "read:user"}

    # --- repositories and pull requests -----------------------------------------------------

    def _app_repositories(self) -> dict[str, dict]:
        if self.repositories is None:
            return {}
        return {name.lower(): dict(info, full_name=name) for name, info in self.repositories().items()}

    def _repo(self, full_name: str, known: dict | None = None) -> dict:
        """The forge's repository ``full_name`` (made on first use), its id brought in line with the app's."""
        if known is None:
            known = self._app_repositories().get(full_name.lower()) or {}
        with self._lock:
            repo = self.repos.get(full_name.lower())
            if repo is None:
                repo = self.repos[full_name.lower()] = {
                    "full_name": known.get("full_name") or full_name, "id": stable_id("repository", full_name),
                    "default_branch": "main", "admins": [], "pulls": {}}
            if isinstance(known.get("id"), int) and known["id"] != repo["id"]:
                repo["id"] = known["id"]  # the app knew the repository first (a sync from the real GitHub)
            return repo

    def _repository_object(self, repo: dict) -> dict:
        owner, name = repo["full_name"].split("/", 1)
        api = f"{self.url}/repos/{repo['full_name']}"
        return {"id": repo["id"], "node_id": _node_id("R_", repo["id"]), "name": name,
                "full_name": repo["full_name"], "private": False, "visibility": "public",
                "owner": {"login": owner, "id": stable_id("user", owner), "type": "Organization",
                          "url": f"{self.url}/users/{owner}", "html_url": f"{self.url}/{owner}"},
                "html_url": f"{self.url}/{repo['full_name']}", "description": None, "fork": False, "url": api,
                "pulls_url": api + "/pulls{/number}", "issues_url": api + "/issues{/number}",
                "archived": False, "disabled": False, "default_branch": repo["default_branch"]}

    def _pull_object(self, repo: dict, pull: dict) -> dict:
        html_url = f"{self.url}/{repo['full_name']}/pull/{pull['number']}"
        api = f"{self.url}/repos/{repo['full_name']}"
        base_repo = self._repository_object(repo)
        return {
            "url": f"{api}/pulls/{pull['number']}", "id": pull["id"], "node_id": _node_id("PR_", pull["id"]),
            "html_url": html_url, "issue_url": f"{api}/issues/{pull['number']}", "number": pull["number"],
            "state": pull["state"], "locked": False, "title": pull["title"], "user": self._user_object(pull["author"]),
            "body": pull["body"], "created_at": pull["created_at"], "updated_at": pull["updated_at"],
            "closed_at": pull["closed_at"], "merged_at": pull["merged_at"],
            "merge_commit_sha": pull.get("merge_commit_sha"), "assignee": None, "assignees": [],
            "requested_reviewers": [], "labels": [], "draft": False,
            "head": {"label": f"{base_repo['owner']['login']}:{pull['branch']}", "ref": pull["branch"],
                     "sha": pull["head_sha"], "repo": base_repo},
            "base": {"label": f"{base_repo['owner']['login']}:{repo['default_branch']}",
                     "ref": repo["default_branch"], "sha": "0" * 40, "repo": base_repo},
            "author_association": "CONTRIBUTOR", "merged": pull["merged_at"] is not None,
            "merged_by": self._user_object(pull["author"]) if pull["merged_at"] else None,
            "comments": 0, "review_comments": 0, "commits": 1, "additions": 1, "deletions": 0, "changed_files": 1,
        }

    def open_pull_request(self, repo_full_name: str, issue_number: int, author_login: str,
                          title: str | None = None) -> int:
        """Open a pull request on ``repo_full_name`` by ``author_login`` whose body says
        ``Fixes #issue_number``; sends the ``pull_request.opened`` delivery. Returns its number
        (above every number the app and the forge hold for the repository).
        Raises :class:`ForgeError` for a bad login or repository name or issue number."""
        if not re.fullmatch(rf"{_NAME}/{_NAME}", repo_full_name or ""):
            raise ForgeError("A repository is named owner/name.")
        if not isinstance(issue_number, int) or not 0 < issue_number < 2**31:
            raise ForgeError("An issue number is a whole number from 1.")
        self.authorize(author_login)
        known = self._app_repositories().get(repo_full_name.lower()) or {}
        with self._lock:
            repo = self._repo(repo_full_name, known)
            number = max([known.get("max_number") or 0, repo.get("max_number") or 0]
                         + [int(n) for n in repo["pulls"]]) + 1
            now = _now()
            pull = {"number": number, "id": self.next_pull_id, "author": author_login.lower(),
                    "title": (title or "").strip() or f"Fix #{issue_number}",
                    "body": f"Fixes #{issue_number}", "issue": issue_number, "state": "open",
                    "branch": f"fix-{issue_number}",
                    "head_sha": hashlib.sha1(f"{repo['id']}:{number}".encode()).hexdigest(),  # noqa: S324
                    "created_at": now, "updated_at": now, "closed_at": None, "merged_at": None}
            self.next_pull_id += 1
            repo["pulls"][str(number)] = pull
            repo["max_number"] = number
        self._deliver("opened", repo, pull)
        return number

    def _pull(self, repo_full_name: str, number: int) -> tuple[dict, dict]:
        repo = self.repos.get(repo_full_name.lower())
        pull = repo["pulls"].get(str(number)) if repo else None
        if pull is None:
            raise ForgeError(f"{repo_full_name} has no pull request #{number}.")
        return repo, pull

    def merge_pull_request(self, repo_full_name: str, number: int) -> int | None:
        """Merge an open pull request; sends ``pull_request.closed`` with ``merged: true``,
        then, as GitHub does for a merge into the default branch whose body says
        "Fixes #N", ``issues.closed`` (``state_reason: "completed"``) for issue N
        when the app holds it open (:meth:`close_fixed_issue`). Returns the app's
        HTTP status for the ``pull_request`` delivery. Raises :class:`ForgeError` when it is not open."""
        status = self._close(repo_full_name, number, merged=True)
        repo, pull = self._pull(repo_full_name, number)
        self.close_fixed_issue(repo, pull)
        return status

    def close_fixed_issue(self, repo: dict, pull: dict) -> int | None:
        """Send ``issues.closed`` (completed) for the issue a merged pull request fixes,
        with the app's issue (``issues``) closed now; returns the app's HTTP status, or
        None when nothing is sent (no ``issues`` callable, the app does not hold the
        issue or holds it closed, the pull request is not merged)."""
        if self.issues is None or not pull.get("merged_at"):
            return None
        known = self.issues(repo["full_name"], int(pull["issue"]))
        if not known or known.get("state") != "open":
            return None
        # Closed after what the app holds: an update stamped at or before its updated_at is stale to it
        # (the same second included, which it would settle by reading the issue, which this forge does not serve).
        closed_at = max(pull["merged_at"], _second_after(known.get("updated_at")))
        with self._lock:
            data = {"action": "closed", "issue": self._issue_object(repo, known, closed_at=closed_at),
                    "repository": self._repository_object(repo), "sender": self._user_object(pull["author"])}
        return self._send_delivery("issues", "closed", repo, int(pull["issue"]), data)

    def _issue_object(self, repo: dict, known: dict, *, closed_at: str | None = None) -> dict:
        """The app's issue (:func:`issue_fields`) in GitHub's shape; closed as completed at ``closed_at``."""
        api = f"{self.url}/repos/{repo['full_name']}"
        user = None
        if known.get("author_login") and isinstance(known.get("author_id"), int):
            user = {"login": known["author_login"], "id": known["author_id"], "type": "User",
                    "url": f"{self.url}/users/{known['author_login']}",
                    "html_url": f"{self.url}/{known['author_login']}", "site_admin": False}
        return {"url": f"{api}/issues/{known['number']}", "repository_url": api, "id": known["id"],
                "node_id": _node_id("I_", known["id"]), "number": known["number"], "title": known["title"],
                "body": known.get("body"), "user": user, "labels": [{"name": n} for n in known.get("labels") or []],
                "state": "closed" if closed_at else "open", "state_reason": "completed" if closed_at else None,
                "locked": False, "comments": known.get("comments") or 0, "html_url": known["html_url"],
                "created_at": known["created_at"], "updated_at": closed_at or _now(), "closed_at": closed_at,
                "author_association": "NONE"}

    def close_pull_request(self, repo_full_name: str, number: int) -> int | None:
        """Close an open pull request without merging; sends ``pull_request.closed`` with
        ``merged: false``. Returns the app's HTTP status. Raises :class:`ForgeError` when it is not open."""
        return self._close(repo_full_name, number, merged=False)

    def _close(self, repo_full_name: str, number: int, merged: bool) -> int | None:
        with self._lock:
            repo, pull = self._pull(repo_full_name, number)
            if pull["state"] != "open":
                raise ForgeError(f"Pull request #{number} is already {'merged' if pull['merged_at'] else 'closed'}.")
            self._repo(repo["full_name"])  # the app's id, should it have learnt one meanwhile
            now = _now()
            pull.update(state="closed", closed_at=now, updated_at=now, merged_at=now if merged else None)
            if merged:
                pull["merge_commit_sha"] = hashlib.sha1(f"merge:{pull['id']}".encode()).hexdigest()  # noqa: S324
        return self._deliver("closed", repo, pull)

    def review_pull_request(self, repo_full_name: str, number: int, reviewer_login: str, state: str,
                            body: str = "", deliver: bool = True) -> int:
        """``reviewer_login`` submits a review of pull request ``number``: ``state``
        ``APPROVED``, ``CHANGES_REQUESTED`` or ``COMMENTED``, as GitHub lists them.
        Sends the signed ``pull_request_review`` delivery (action ``submitted``)
        unless ``deliver`` is False (a missed webhook: only sync will see it).
        Returns the review's id. Raises :class:`ForgeError` for an unknown pull
        request, a bad login or state."""
        if state not in _REVIEW_STATES:
            raise ForgeError("A review is APPROVED, CHANGES_REQUESTED or COMMENTED.")
        self.authorize(reviewer_login)
        with self._lock:
            repo, pull = self._pull(repo_full_name, number)
            review = {"id": self.next_review_id, "reviewer": reviewer_login.lower(), "state": state,
                      "body": body, "submitted_at": _now()}
            self.next_review_id += 1
            pull.setdefault("reviews", []).append(review)
            data = {"action": "submitted",
                    "review": dict(self._review_object(repo, pull, review), state=_REVIEW_STATES[state]),
                    "pull_request": self._pull_object(repo, pull), "repository": self._repository_object(repo),
                    "sender": self._user_object(review["reviewer"])}
        if deliver:
            self._send_delivery("pull_request_review", "submitted", repo, pull["number"], data)
        else:
            self.save()
        return review["id"]

    def _review_object(self, repo: dict, pull: dict, review: dict) -> dict:
        """A review in the shape of ``GET …/pulls/{number}/reviews`` (the REST list is upper case;
        the delivery's ``review.state`` is lower case, as GitHub sends them)."""
        return {"id": review["id"], "node_id": _node_id("PRR_", review["id"]),
                "user": self._user_object(review["reviewer"]), "body": review["body"], "state": review["state"],
                "html_url": f"{self.url}/{repo['full_name']}/pull/{pull['number']}#pullrequestreview-{review['id']}",
                "commit_id": pull["head_sha"], "submitted_at": review["submitted_at"],
                "author_association": "MEMBER"}

    def set_admin(self, repo_full_name: str, login: str, admin: bool = True) -> None:
        """Make ``login`` an administrator of the repository (or not): what
        ``GET /repos/{owner}/{repo}/collaborators/{login}/permission`` answers."""
        self.authorize(login)
        with self._lock:
            repo = self._repo(repo_full_name)
            admins = set(repo["admins"])
            (admins.add if admin else admins.discard)(login.lower())
            repo["admins"] = sorted(admins)

    # --- issue comments and labels (issue 22) -------------------------------------------------

    @staticmethod
    def _issue_key(repo_full_name: str, number: int) -> str:
        return f"{repo_full_name.lower()}#{number}"

    def _comment_object(self, repo_full_name: str, number: int, comment: dict) -> dict:
        html_url = f"{self.url}/{repo_full_name}/issues/{number}#issuecomment-{comment['id']}"
        return {"id": comment["id"], "node_id": _node_id("IC_", comment["id"]), "html_url": html_url,
                "issue_url": f"{self.url}/repos/{repo_full_name}/issues/{number}",
                "user": self._user_object(comment["author"]), "body": comment["body"],
                "created_at": comment["created_at"], "updated_at": comment["updated_at"],
                "author_association": "NONE", "performed_via_github_app": None}

    def add_comment(self, repo_full_name: str, number: int, author_login: str, body: str,
                    deliver: bool = True) -> dict:
        """A comment by ``author_login`` on issue ``number``; a person's comment (``deliver``)
        sends the ``issue_comment.created`` delivery. Returns the comment in GitHub's shape.
        Raises :class:`ForgeError` for a bad login, repository or empty body."""
        if not re.fullmatch(rf"{_NAME}/{_NAME}", repo_full_name or "") or not (body or "").strip():
            raise ForgeError("A comment needs a repository (owner/name) and some text.")
        self.authorize(author_login)
        with self._lock:
            repo = self._repo(repo_full_name)
            now = _now()
            comment = {"id": self.next_comment_id, "author": author_login.lower(), "body": body,
                       "created_at": now, "updated_at": now}
            self.next_comment_id += 1
            self.comments.setdefault(self._issue_key(repo["full_name"], number), []).append(comment)
            answer = self._comment_object(repo["full_name"], number, comment)
        if deliver:
            issue = {"id": stable_id("issue", f"{repo['full_name']}#{number}"), "number": number,
                     "title": f"Issue #{number}", "state": "open", "user": self._user_object(author_login),
                     "html_url": f"{self.url}/{repo['full_name']}/issues/{number}",
                     "repository_url": f"{self.url}/repos/{repo['full_name']}", "labels": [],
                     "created_at": now, "updated_at": now, "closed_at": None, "comments": 0, "locked": False}
            self._send_delivery("issue_comment", "created", repo, number, {
                "action": "created", "issue": issue, "comment": answer,
                "repository": self._repository_object(repo), "sender": self._user_object(author_login)})
        self.save()
        return answer

    def edit_comment(self, comment_id: int, body: str) -> dict | None:
        """Edit a comment (what the app's ``PATCH`` does); None when it is gone."""
        with self._lock:
            for key, rows in self.comments.items():
                for comment in rows:
                    if comment["id"] == comment_id:
                        comment.update(body=body, updated_at=_now())
                        full_name = key.rsplit("#", 1)[0]
                        repo = self.repos.get(full_name, {"full_name": full_name})
                        return self._comment_object(repo["full_name"], int(key.rsplit("#", 1)[1]), comment)
        return None

    def delete_comment(self, comment_id: int) -> None:
        """A person deletes a comment."""
        with self._lock:
            for rows in self.comments.values():
                rows[:] = [c for c in rows if c["id"] != comment_id]
        self.save()

    def set_label(self, repo_full_name: str, number: int, name: str, present: bool) -> bool:
        """Add or remove a label on an issue; False when removing one it does not carry."""
        with self._lock:
            labels = self.labels.setdefault(self._issue_key(repo_full_name, number), [])
            if present:
                if name not in labels:
                    labels.append(name)
                return True
            if name not in labels:
                return False
            labels.remove(name)
            return True

    def _comments_html(self, full_name: str, number: int) -> str:
        rows = self.comments.get(self._issue_key(full_name, number), [])
        labels = self.labels.get(self._issue_key(full_name, number), [])
        shown = "".join(
            f"<article id='issuecomment-{c['id']}' aria-label='comment {c['id']}'><p class=note>"
            f"{html.escape(self.users[c['author']]['login'])}"
            f" · {html.escape(c['updated_at'])}</p><pre>{html.escape(c['body'])}</pre></article>" for c in rows
        ) or "<p>No comment yet.</p>"
        tags = ", ".join(html.escape(n) for n in labels) or "none"
        return (f"<h2>Labels</h2><p>{tags}</p><h2>Comments</h2>{shown}"
                f"<form method=post action='/{html.escape(full_name)}/issues/{number}/comments'>"
                "<label for=comment-author>Comment as this GitHub login</label><input id=comment-author "
                "name=author required maxlength=39><label for=comment-body>Comment (try <code>/claim</code> with "
                "a plan, or <code>/unclaim</code>)</label><textarea id=comment-body name=body rows=4 cols=50 required>"
                "</textarea>"
                "<p><button>Comment</button></p></form>")

    # --- deliveries -------------------------------------------------------------------------

    def payload(self, action: str, repo: dict, pull: dict) -> dict:
        """A ``pull_request`` delivery's body, in GitHub's shape."""
        return {"action": action, "number": pull["number"], "pull_request": self._pull_object(repo, pull),
                "repository": self._repository_object(repo), "sender": self._user_object(pull["author"])}

    def _deliver(self, action: str, repo: dict, pull: dict) -> int | None:
        """POST the signed delivery to the app; returns its HTTP status (None: unreachable or no webhook)."""
        with self._lock:
            data = self.payload(action, repo, pull)
        return self._send_delivery("pull_request", action, repo, pull["number"], data)

    def _send_delivery(self, event: str, action: str, repo: dict, number: int, data: dict) -> int | None:
        body = json.dumps(data).encode()
        record = {"id": str(uuid.uuid4()), "event": event, "action": action, "at": _now(),
                  "repository": repo["full_name"], "number": number, "status": None, "answer": ""}
        if self.webhook_url and self.webhook_secret:
            signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/local-forge",
                       "X-GitHub-Event": event, "X-GitHub-Delivery": record["id"],
                       "X-GitHub-Hook-ID": "1", "X-Hub-Signature-256": f"sha256={signature}"}
            try:
                record["status"], record["answer"] = self.send(self.webhook_url, body, headers)
            except OSError as error:
                record["answer"] = f"not delivered: {error}"
        else:
            record["answer"] = "no webhook configured"
        with self._lock:
            self.deliveries = (self.deliveries + [record])[-50:]
        self.save()
        return record["status"]

    # --- pages ------------------------------------------------------------------------------

    def index_page(self) -> str:
        app_repos = self._app_repositories()
        names = {key: info["full_name"] for key, info in app_repos.items() if info.get("max_number")}
        names.update({key: repo["full_name"] for key, repo in self.repos.items()})
        rows = []
        for key in sorted(names):
            pulls = self.repos.get(key, {}).get("pulls", {})
            open_count = sum(1 for p in pulls.values() if p["state"] == "open")
            rows.append(f"<tr><td><a href='/{html.escape(names[key])}'>{html.escape(names[key])}</a></td>"
                        f"<td>{len(pulls)}</td><td>{open_count}</td></tr>")
        repos = ("<div class=wrap><table><caption>Repositories of the app's backlog and of this forge</caption>"
                 "<thead><tr><th scope=col>Repository</th><th scope=col>Pull requests</th>"
                 "<th scope=col>Open</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
                 if rows else "<p>No repository yet: open a pull request from an item's page in the app.</p>")
        users = ", ".join(f"{html.escape(u['login'])} ({u['id']})" for u in self.users.values()) or "none yet"
        return page("Local forge", (
            "<p>This forge plays GitHub on this laptop: people connect their GitHub account here "
            "(pick or type any login), and pull requests opened, merged or closed here send the same signed "
            "webhook deliveries GitHub sends to the app.</p>"
            "<h2>Go to a repository</h2><form method=get action='/go'><label for=repository>Repository "
            "(owner/name)</label><input id=repository name=repository required pattern='[A-Za-z0-9_.\\-]+/"
            "[A-Za-z0-9_.\\-]+'> <button>Go</button></form>"
            f"<h2>Repositories</h2>{repos}<h2>Users</h2><p>{users}</p>{self._deliveries_html()}"))

    def _deliveries_html(self, full_name: str | None = None) -> str:
        shown = [d for d in self.deliveries if full_name is None or d["repository"].lower() == full_name.lower()]
        if not shown:
            return ""
        rows = "".join(
            f"<tr><td>{html.escape(d['at'])}</td><td>{html.escape(d['event'])}.{html.escape(d['action'])}</td>"
            f"<td>{html.escape(d['repository'])}#{d['number']}</td><td>{d['status'] or '—'}</td>"
            f"<td>{html.escape(d['answer'][:120])}</td></tr>" for d in reversed(shown[-10:]))
        return ("<h2>Recent webhook deliveries</h2><div class=wrap><table><thead><tr><th scope=col>Sent (UTC)</th>"
                "<th scope=col>Event</th><th scope=col>Pull request</th><th scope=col>App's answer</th>"
                f"<th scope=col>Body</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def _open_form(self, full_name: str, issue: int | None) -> str:
        options = "".join(f"<option value='{html.escape(u['login'])}'>" for u in self.users.values())
        issue_field = (f"<input type=hidden name=issue value='{issue}'>" if issue else
                       "<label for=issue>Issue number it fixes</label>"
                       "<input id=issue name=issue type=number min=1 required>")
        return (f"<h2>Open a pull request</h2><form method=post action='/{html.escape(full_name)}/pulls'>"
                f"{issue_field}<label for=author>Author (a GitHub login)</label>"
                "<input id=author name=author list=logins required autocomplete=off "
                "aria-describedby=author-help>"
                f"<datalist id=logins>{options}</datalist>"
                "<p id=author-help class=note>The login the implementor connected in the app counts for their "
                "claim.</p><label for=title>Title (optional)</label><input id=title name=title maxlength=200>"
                f"<p class=note>Its description will say <code>Fixes #{issue or 'N'}</code>.</p>"
                "<button>Open pull request</button></form>")

    def _pull_rows(self, repo: dict | None, issue: int | None = None) -> str:
        pulls = [p for p in (repo or {}).get("pulls", {}).values() if issue is None or p["issue"] == issue]
        if not pulls:
            return "<p>No pull request yet.</p>"
        rows = "".join(
            f"<tr><td><a href='/{html.escape(repo['full_name'])}/pull/{p['number']}'>#{p['number']}</a></td>"
            f"<td>{html.escape(p['title'])}</td><td>{html.escape(self.users[p['author']]['login'])}</td>"
            f"<td>{'merged' if p['merged_at'] else p['state']}</td></tr>"
            for p in sorted(pulls, key=lambda p: -p["number"]))
        return ("<div class=wrap><table><thead><tr><th scope=col>Number</th><th scope=col>Title</th>"
                f"<th scope=col>Author</th><th scope=col>State</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def repository_page(self, full_name: str) -> str:
        repo = self.repos.get(full_name.lower())
        name = repo["full_name"] if repo else full_name
        admins = ", ".join(self.users[a]["login"] for a in (repo or {}).get("admins", [])) or "none"
        return page(name, (
            f"<h2>Pull requests</h2>{self._pull_rows(repo)}{self._open_form(name, None)}"
            f"<h2>Administrators</h2><p>{html.escape(admins)}</p>"
            f"<form method=post action='/{html.escape(name)}/admins'><label for=admin>Make this GitHub login an "
            "administrator of the repository (what GitHub tells the app when a maintainer asks to "
            "maintain the project)</label><input id=admin name=login required> <button>Make administrator</button>"
            f"</form>{self._deliveries_html(name)}"))

    def issue_page(self, full_name: str, number: int) -> str:
        repo = self.repos.get(full_name.lower())
        name = repo["full_name"] if repo else full_name
        return page(f"{name}#{number}", (
            f"<p>Issue #{number} of <a href='/{html.escape(name)}'>{html.escape(name)}</a>, as the app's backlog "
            f"holds it.</p>{self._comments_html(name, number)}<h2>Pull requests that fix it</h2>"
            f"{self._pull_rows(repo, number)}{self._open_form(name, number)}"))

    def pull_page(self, full_name: str, number: int) -> str:
        repo, pull = self._pull(full_name, number)
        state = "merged" if pull["merged_at"] else pull["state"]
        actions = (f"<form method=post action='/{html.escape(repo['full_name'])}/pull/{number}/merge'>"
                   "<button>Merge pull request</button></form>"
                   f"<form method=post action='/{html.escape(repo['full_name'])}/pull/{number}/close'>"
                   "<button>Close without merging</button></form>") if pull["state"] == "open" else ""
        return page(pull["title"], (
            f"<p><strong>{html.escape(state.capitalize())}</strong> · pull request #{number} of "
            f"<a href='/{html.escape(repo['full_name'])}'>{html.escape(repo['full_name'])}</a> · by "
            f"{html.escape(self.users[pull['author']]['login'])} "
            f"(GitHub id {self.users[pull['author']]['id']}) · into <code>{html.escape(repo['default_branch'])}"
            f"</code> from <code>{html.escape(pull['branch'])}</code></p>"
            f"<p>{html.escape(pull['body'])}</p>{actions}{self._deliveries_html(repo['full_name'])}"))

    def authorize_page(self, query: dict, error: str = "") -> str:
        hidden = "".join(f"<input type=hidden name='{html.escape(k)}' value='{html.escape(v)}'>"
                         for k, v in query.items() if k in ("client_id", "redirect_uri", "state", "scope"))
        known = "".join(
            f"<form method=post>{hidden}<input type=hidden name=login value='{html.escape(u['login'])}'>"
            f"<button>Continue as {html.escape(u['login'])}</button></form>" for u in self.users.values())
        alert = f"<p role=alert><strong>{html.escape(error)}</strong></p>" if error else ""
        return page("Authorize the app", (
            f"{alert}<p>The app asks to know who you are on GitHub (scope <code>"
            f"{html.escape(query.get('scope', ''))}</code>). On the real GitHub you would sign in; here you "
            "pick or type the GitHub login you are playing. Each login keeps the same numeric id.</p>"
            f"{known}<form method=post>{hidden}<label for=login>GitHub login</label>"
            "<input id=login name=login required maxlength=39 autocomplete=username> "
            "<button>Authorize</button></form>"))

    # --- HTTP -------------------------------------------------------------------------------

    def _handler(self):
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body, content_type: str = "application/json") -> None:
                raw = (json.dumps(body) if content_type == "application/json" else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type if content_type != "text/html"
                                 else "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _see_other(self, target: str) -> None:
                self.send_response(303)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _not_found(self) -> None:
                self._reply(404, {"message": "Not Found",
                                  "documentation_url": "https://docs.github.com/rest"})

            def _token_login(self) -> str | None:
                scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
                if scheme.lower() not in ("bearer", "token"):
                    return None
                return forge.tokens.get(token.strip())

            def do_GET(self):  # noqa: N802
                split = urlsplit(self.path)
                path, query = split.path.rstrip("/") or "/", {k: v[-1] for k, v in parse_qs(split.query).items()}
                try:
                    self._get(path, query)
                except ForgeError as error:
                    self._reply(404, page("Not found", f"<p>{html.escape(str(error))}</p>"), "text/html")

            def _get(self, path: str, query: dict) -> None:
                if path == "/":
                    return self._reply(200, forge.index_page(), "text/html")
                if path == "/go":
                    name = query.get("repository", "").strip().strip("/")
                    return self._see_other(f"/{name}" if re.fullmatch(rf"{_NAME}/{_NAME}", name) else "/")
                if path == "/login/oauth/authorize":
                    if query.get("client_id") != LOCAL_OAUTH_CLIENT_ID or not _http(query.get("redirect_uri")):
                        return self._reply(400, page("Application not found", (
                            "<p>This forge only knows the app's local OAuth client "
                            f"(<code>{LOCAL_OAUTH_CLIENT_ID}</code>).</p>")), "text/html")
                    return self._reply(200, forge.authorize_page(query), "text/html")
                if path == "/user":
                    login = self._token_login()
                    if login is None:
                        return self._reply(401, {"message": "Bad credentials",
                                                 "documentation_url": "https://docs.github.com/rest"})
                    return self._reply(200, dict(forge._user_object(login), name=None, email=None))
                if match := _API_PERMISSION.fullmatch(path):
                    repo = forge.repos.get(f"{match[1]}/{match[2]}".lower())
                    login = match[3].lower()
                    if repo is None or login not in forge.users:
                        return self._not_found()
                    permission = "admin" if login in repo["admins"] else "read"
                    return self._reply(200, {"permission": permission, "role_name": permission,
                                             "user": forge._user_object(login)})
                if match := _API_COMMENTS.fullmatch(path):
                    repo = forge._repo(f"{match[1]}/{match[2]}")
                    rows = forge.comments.get(forge._issue_key(repo["full_name"], int(match[3])), [])
                    return self._reply(200, [forge._comment_object(repo["full_name"], int(match[3]), c)
                                             for c in rows])
                if match := _API_REVIEWS.fullmatch(path):
                    try:
                        repo, pull = forge._pull(f"{match[1]}/{match[2]}", int(match[3]))
                    except ForgeError:
                        return self._not_found()
                    return self._reply(200, [forge._review_object(repo, pull, r) for r in pull.get("reviews", [])])
                if match := _API_PULL.fullmatch(path):
                    try:
                        repo, pull = forge._pull(f"{match[1]}/{match[2]}", int(match[3]))
                    except ForgeError:
                        return self._not_found()
                    return self._reply(200, forge._pull_object(repo, pull))
                if match := _API_REPO.fullmatch(path):
                    return self._reply(200, forge._repository_object(forge._repo(f"{match[1]}/{match[2]}")))
                if match := _PULL_PAGE.fullmatch(path):
                    return self._reply(200, forge.pull_page(f"{match[1]}/{match[2]}", int(match[3])), "text/html")
                if match := _ISSUE_PAGE.fullmatch(path):
                    return self._reply(200, forge.issue_page(f"{match[1]}/{match[2]}", int(match[3])), "text/html")
                if match := _REPO_PAGE.fullmatch(path):
                    return self._reply(200, forge.repository_page(f"{match[1]}/{match[2]}"), "text/html")
                return self._not_found()

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = urlsplit(self.path).path.rstrip("/")
                if path.startswith("/repos/"):
                    return self._api_write("POST", path, raw)
                form = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
                try:
                    self._post(path, form)
                except ForgeError as error:
                    self._reply(400, page("Refused", f"<p role=alert>{html.escape(str(error))}</p>"), "text/html")
                finally:
                    forge.save()

            def do_PATCH(self):  # noqa: N802
                self._api_write("PATCH", urlsplit(self.path).path.rstrip("/"),
                                self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_DELETE(self):  # noqa: N802
                self._api_write("DELETE", urlsplit(self.path).path.rstrip("/"),
                                self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _api_write(self, method: str, path: str, raw: bytes) -> None:
                """The REST writes of the living comment and label, as GitHub answers them."""
                try:
                    sent = json.loads(raw) if raw else {}
                except ValueError:
                    return self._reply(400, {"message": "Problems parsing JSON"})
                sent = sent if isinstance(sent, dict) else {}
                try:
                    if method == "POST" and (match := _API_COMMENTS.fullmatch(path)):
                        author = self._token_login() or "backlog-commons-bot"
                        return self._reply(201, forge.add_comment(f"{match[1]}/{match[2]}", int(match[3]), author,
                                                                  str(sent.get("body") or ""), deliver=False))
                    if method == "PATCH" and (match := _API_COMMENT.fullmatch(path)):
                        edited = forge.edit_comment(int(match[3]), str(sent.get("body") or ""))
                        forge.save()
                        return self._reply(200, edited) if edited else self._not_found()
                    if (match := _API_LABELS.fullmatch(path)) and method in ("POST", "DELETE"):
                        name, number = f"{match[1]}/{match[2]}", int(match[3])
                        if method == "POST":
                            for label in sent.get("labels") or []:
                                forge.set_label(name, number, str(label), True)
                        elif not forge.set_label(name, number, unquote(match[4] or ""), False):
                            return self._not_found()
                        forge.save()
                        return self._reply(200, [{"name": n} for n in
                                                 forge.labels.get(forge._issue_key(name, number), [])])
                except ForgeError as error:
                    return self._reply(422, {"message": str(error)})
                return self._not_found()

            def _post(self, path: str, form: dict) -> None:
                if path == "/login/oauth/authorize":
                    if form.get("client_id") != LOCAL_OAUTH_CLIENT_ID or not _http(form.get("redirect_uri")):
                        return self._reply(400, page("Application not found", "<p>Unknown OAuth client.</p>"),
                                           "text/html")
                    login = form.get("login", "").strip()
                    try:
                        code = forge.grant_code(login, form["client_id"], form["redirect_uri"])
                    except ForgeError as error:
                        return self._reply(400, forge.authorize_page(form, str(error)), "text/html")
                    separator = "&" if "?" in form["redirect_uri"] else "?"
                    return self._see_other(form["redirect_uri"] + separator + urlencode(
                        {"code": code, "state": form.get("state", "")}))
                if path == "/login/oauth/access_token":
                    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
                    scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
                    if scheme.lower() == "basic":
                        try:
                            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
                        except ValueError:
                            pass
                    return self._reply(200, forge.exchange_code(form.get("code", ""), client_id, client_secret,
                                                                form.get("redirect_uri")))
                if match := _OPEN_PULL.fullmatch(path):
                    issue = form.get("issue", "")
                    if not issue.isascii() or not issue.isdigit():
                        raise ForgeError("Give the number of the issue the pull request fixes.")
                    number = forge.open_pull_request(f"{match[1]}/{match[2]}", int(issue),
                                                     form.get("author", "").strip(), form.get("title"))
                    return self._see_other(f"/{forge.repos[f'{match[1]}/{match[2]}'.lower()]['full_name']}"
                                           f"/pull/{number}")
                if match := _PULL_ACTION.fullmatch(path):
                    name, number = f"{match[1]}/{match[2]}", int(match[3])
                    if match[4] == "merge":
                        forge.merge_pull_request(name, number)
                    else:
                        forge.close_pull_request(name, number)
                    return self._see_other(f"/{forge.repos[name.lower()]['full_name']}/pull/{number}")
                if match := _COMMENT_FORM.fullmatch(path):
                    name, number = f"{match[1]}/{match[2]}", int(match[3])
                    forge.add_comment(name, number, form.get("author", "").strip(), form.get("body", ""))
                    return self._see_other(f"/{forge.repos[name.lower()]['full_name']}/issues/{number}")
                if match := _ADMINS.fullmatch(path):
                    forge.set_admin(f"{match[1]}/{match[2]}", form.get("login", "").strip())
                    return self._see_other(f"/{match[1]}/{match[2]}")
                return self._not_found()

            def log_message(self, *args):
                pass

        return Handler
