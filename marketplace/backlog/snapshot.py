"""Loading recorded forge responses (GitHub list-issues pages) into the backlog.

A snapshot directory holds JSON files in the shape of
``GET /repos/{owner}/{repo}/issues?state=all`` and, optionally, an
``index.json`` listing ``{"file", "repository", "project", "registry_url"}``
per file: which member project the repository belongs to and, where the
registry names it differently (a moved repository), the registry's URL.
Everything is validated before anything is written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from marketplace.backlog.service import upsert_issue, upsert_pull_request
from marketplace.extensions import db
from marketplace.forges import github
from marketplace.forges.service import (
    RepositoryConflict,
    add_repository,
    find_repository,
    move_repository,
)
from marketplace.forges.types import ForgeIssue, ForgePayloadError, ForgePullRequest
from marketplace.forges.urls import (
    InvalidRepositoryUrl,
    is_valid_path,
    parse_repository_url,
    path_key,
)
from marketplace.projects.models import MemberProject

ACTOR = "cli:backlog load-snapshot"


class SnapshotError(ValueError):
    """The snapshot cannot be loaded; ``problems`` names each bad file or entry."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class FileSummary:
    """What loading one file did, with counts by outcome."""

    file: str
    repository: str
    notes: list[str] = field(default_factory=list)
    items: dict[str, int] = field(default_factory=dict)
    pull_requests: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        def fmt(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"

        return f"{self.file} → {self.repository}: items {fmt(self.items)}; pull requests {fmt(self.pull_requests)}"


@dataclass
class _PlannedFile:
    file: str
    host: str
    owner: str
    name: str
    project_slug: str | None
    registry_url: str | None
    issues: list[ForgeIssue]
    pulls: list[ForgePullRequest]


def _read_json(path: Path, problems: list[str]):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: not valid JSON ({exc})")
    except OSError as exc:
        problems.append(f"{path.name}: cannot be read ({exc.strerror})")
    return None


def _read_index(directory: Path, problems: list[str]) -> list[dict] | None:
    index_path = directory / "index.json"
    if not index_path.exists():
        return None
    index = _read_json(index_path, problems)
    if index is None:
        return None
    if not isinstance(index, list):
        problems.append("index.json: expected a JSON list of {file, repository, project}")
        return None
    entries = []
    for n, entry in enumerate(index):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            problems.append(f"index.json: entry #{n} has no file name")
            continue
        name = entry["file"]
        # Only files of this directory: no paths, so an index cannot reach elsewhere.
        if name != Path(name).name or name in ("", ".", "..") or "\\" in name or not name.endswith(".json"):
            problems.append(f"index.json: entry #{n}: {name[:80]!r} is not a .json file name in this directory")
            continue
        repo = entry.get("repository")
        if (
            not isinstance(repo, str)
            or repo.count("/") != 1
            or not is_valid_path(*repo.split("/"))
        ):
            problems.append(f"index.json: entry for {name} has no valid repository \"owner/name\"")
            continue
        if entry.get("project") is not None and not isinstance(entry.get("project"), str):
            problems.append(f"index.json: entry for {entry['file']} has a project that is not a slug")
            continue
        entries.append(entry)
    return entries


def _parse_file(path: Path, problems: list[str]) -> tuple[list[ForgeIssue], list[ForgePullRequest], dict]:
    data = _read_json(path, problems)
    issues: list[ForgeIssue] = []
    pulls: list[ForgePullRequest] = []
    repos: dict[tuple[str, str], tuple[str, str]] = {}
    if data is None:
        return issues, pulls, repos
    if not isinstance(data, list):
        problems.append(f"{path.name}: expected a JSON list of GitHub issue objects")
        return issues, pulls, repos
    for n, obj in enumerate(data):
        try:
            if not isinstance(obj, dict):
                raise ForgePayloadError("not a JSON object")
            host, owner, name = github.repository_path_of(obj)
            repos.setdefault((host, path_key(owner, name)), (owner, name))
            if github.is_pull_request(obj):
                pulls.append(github.parse_pull_request(obj))
            else:
                issues.append(github.parse_issue(obj))
        except ForgePayloadError as exc:
            problems.append(f"{path.name}: element #{n} is not a GitHub issue or pull request ({exc})")
    return issues, pulls, repos


def plan_snapshot(directory: str | Path) -> list[_PlannedFile]:
    """Read and validate every file of the snapshot directory; write nothing.

    Raises :class:`SnapshotError` naming each unreadable file, non-issue
    element, or file whose elements belong to another repository than its index
    entry says.
    """
    directory = Path(directory)
    problems: list[str] = []
    if not directory.is_dir():
        raise SnapshotError([f"{directory}: not a directory"])
    index = _read_index(directory, problems)
    if index is None and not problems:
        index = [{"file": p.name} for p in sorted(directory.glob("*.json"))]
        if not index:
            problems.append(f"{directory}: no .json files")
    planned: list[_PlannedFile] = []
    for entry in index or []:
        path = directory / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: listed in index.json but missing")
            continue
        before = len(problems)
        issues, pulls, repos = _parse_file(path, problems)
        if len(problems) != before:
            continue
        if len(repos) > 1:
            problems.append(f"{path.name}: elements belong to several repositories")
            continue
        if not repos and "repository" not in entry:
            problems.append(f"{path.name}: empty, and no index entry names its repository")
            continue
        if "repository" in entry:
            owner, name = entry["repository"].split("/")
            host = github.GITHUB_HOST
            if repos and set(repos) != {(host, path_key(owner, name))}:
                problems.append(
                    f"{path.name}: elements belong to {next(iter(repos))[1]}, "
                    f"not {entry['repository']} as index.json says"
                )
                continue
        else:
            # Without an index the elements name their repository.
            (host, _), (owner, name) = next(iter(repos.items()))
        planned.append(
            _PlannedFile(
                file=path.name,
                host=host,
                owner=owner,
                name=name,
                project_slug=entry.get("project"),
                registry_url=entry.get("registry_url"),
                issues=issues,
                pulls=pulls,
            )
        )
    if problems:
        raise SnapshotError(problems)
    return planned


def load_snapshot(directory: str | Path) -> list[FileSummary]:
    """Load a snapshot directory into the backlog; return one summary per file.

    Each file's repository is found by its current or a former path. When it
    is not known yet: if the index gives a ``registry_url`` naming a known
    repository under another path, that repository has moved and is renamed
    (the old path stays as an alias); otherwise the repository is added to the
    index's project (a repository the registry does not list).

    Raises :class:`SnapshotError` before writing when a file is invalid, a
    project is unknown, or a repository belongs to another project. Flushes;
    the caller commits (one transaction for the whole directory).
    """
    planned = plan_snapshot(directory)
    problems: list[str] = []
    projects: dict[str, MemberProject] = {}
    for plan in planned:
        if plan.project_slug and plan.project_slug not in projects:
            project = db.session.scalar(
                select(MemberProject).where(MemberProject.slug == plan.project_slug)
            )
            if project is None:
                problems.append(
                    f"{plan.file}: member project {plan.project_slug!r} does not exist "
                    "(run `flask registry import` first)"
                )
            else:
                projects[plan.project_slug] = project
        if not plan.project_slug and find_repository(plan.host, plan.owner, plan.name) is None:
            problems.append(
                f"{plan.file}: repository {plan.owner}/{plan.name} is unknown and no index "
                "entry names its member project"
            )
    if problems:
        raise SnapshotError(problems)

    summaries: list[FileSummary] = []
    for plan in planned:
        summary = FileSummary(plan.file, f"{plan.host}/{plan.owner}/{plan.name}")
        try:
            repo = _resolve_repository(plan, projects.get(plan.project_slug), summary)
        except RepositoryConflict as exc:
            raise SnapshotError([f"{plan.file}: {exc}"]) from None
        for issue in plan.issues:
            outcome = upsert_issue(repo, issue).outcome
            summary.items[outcome] = summary.items.get(outcome, 0) + 1
        for pull in plan.pulls:
            outcome = upsert_pull_request(repo, pull).outcome
            summary.pull_requests[outcome] = summary.pull_requests.get(outcome, 0) + 1
        summaries.append(summary)
    return summaries


def _resolve_repository(plan: _PlannedFile, project: MemberProject | None, summary: FileSummary):
    repo = find_repository(plan.host, plan.owner, plan.name)
    if repo is not None:
        if project is not None and repo.project_id != project.id:
            raise RepositoryConflict(
                f"{repo.full_name} belongs to project {repo.project.slug!r}, "
                f"not {project.slug!r} as index.json says"
            )
        if path_key(repo.owner, repo.name) == path_key(plan.owner, plan.name):
            if (repo.owner, repo.name) != (plan.owner, plan.name):
                # Same path in another case: take the forge's spelling.
                move_repository(repo, plan.owner, plan.name, actor=ACTOR)
        return repo
    if plan.registry_url:
        try:
            old = parse_repository_url(plan.registry_url)
        except InvalidRepositoryUrl as exc:
            raise RepositoryConflict(f"registry_url is not a repository URL ({exc})") from None
        if old.is_repository:
            moved = find_repository(old.host, old.owner, old.name)
            if moved is not None:
                if moved.project_id != project.id:
                    raise RepositoryConflict(
                        f"{moved.full_name} belongs to project {moved.project.slug!r}"
                    )
                summary.notes.append(
                    f"{old.owner}/{old.name} moved to {plan.owner}/{plan.name}; old name kept as an alias"
                )
                move_repository(moved, plan.owner, plan.name, actor=ACTOR)
                return moved
    parsed = parse_repository_url(f"https://{plan.host}/{plan.owner}/{plan.name}")
    summary.notes.append(f"repository added to project {project.slug!r}")
    return add_repository(project, parsed, label=None, actor=ACTOR)
