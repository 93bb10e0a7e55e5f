"""Import of the DPGA registry (DPGAlliance/publicgoods-candidates) as member projects.

Input: the JSON list of registry records, each a ``nominee-schema.json`` record
plus ``_id`` (file slug) and ``_path`` (``nominees/…``, ``archive/…`` or
``excluded-nominees/…``). The import is one transaction: every record is
validated before anything is written, and re-running it changes nothing.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.forges.service import RepositoryConflict, add_repository
from marketplace.forges.urls import (
    InvalidRepositoryUrl,
    ParsedUrl,
    parse_repository_url,
)
from marketplace.projects.models import (
    MemberProject,
    ProjectLink,
    ProjectLinkKind,
    ProjectSdg,
    RegistryStatus,
)
from marketplace.validation import http_url

ACTOR = "cli:registry import"
_STATUS_BY_FOLDER = {
    "nominees": RegistryStatus.active,
    "archive": RegistryStatus.archived,
    "excluded-nominees": RegistryStatus.excluded,
}
# "backend：https://github.com/…": a short label, a colon (ASCII or full-width), one URL.
_LABELLED_URL = re.compile(r"^[^\s:：/]{1,40}\s*[:：]\s*(https?://\S+)$")


class RegistryError(ValueError):
    """The registry cannot be imported; ``problems`` names each bad record or file."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class RecordOutcome:
    """What the import did with one record."""

    slug: str
    path: str
    outcome: str  # created | updated | unchanged | skipped | invalid
    reasons: list[str] = field(default_factory=list)


@dataclass
class ImportSummary:
    """Per-record outcomes of one import, in input order."""

    records: list[RecordOutcome] = field(default_factory=list)
    not_selected: int = 0  # archived/excluded records left out without --include-archived

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r.outcome == outcome)

    def lines(self) -> list[str]:
        """Human-readable summary lines, one per notable record."""
        out = [
            f"created {self.count('created')}, updated {self.count('updated')}, "
            f"unchanged {self.count('unchanged')}, skipped {self.count('skipped')}, "
            f"invalid {self.count('invalid')}"
        ]
        if self.not_selected:
            out.append(
                f"not selected: {self.not_selected} archived or excluded records "
                "(use --include-archived to import them)"
            )
        for r in self.records:
            if r.reasons:
                out.append(f"  {r.outcome:9} {r.path}: " + "; ".join(r.reasons))
        return out


@dataclass
class _RepoUrl:
    label: str | None
    parsed: ParsedUrl
    note: str | None = None


@dataclass
class _ProjectData:
    slug: str
    path: str
    status: RegistryStatus
    fields: dict
    sdgs: list[tuple[int, str | None, str | None]]
    urls: list[_RepoUrl]
    notes: list[str]


def load_registry_file(path: str | Path) -> list[dict]:
    """Read the registry JSON file at ``path``: a list of record objects.

    Raises :class:`RegistryError` when the file is missing, is not JSON, or is
    not a list of objects.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError([f"{path}: no such file"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError([f"{path}: not valid JSON ({exc})"]) from None
    if not isinstance(data, list):
        raise RegistryError([f"{path}: expected a JSON list of registry records"])
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise RegistryError([f"{path}: record #{index} is not a JSON object"])
    return data


def _status_of(record: dict) -> RegistryStatus | None:
    folder = str(record.get("_path", "")).split("/", 1)[0]
    return _STATUS_BY_FOLDER.get(folder)


def _text(value) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _str_list(value) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def _list_field(record: dict, key: str, problems: list[str]) -> list:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{key} is not a list")
        return []
    return value


def _find_nul(value, path: str = "") -> str | None:
    if isinstance(value, str):
        return path or "a value" if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _find_nul(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _url_or_note(value, what: str, notes: list[str]) -> str | None:
    if _text(value) is None:
        return None
    url = http_url(value)
    if url is None or len(url) > 2000:
        notes.append(f"{what} {str(value)[:80]!r} is not an http(s) URL: ignored")
        return None
    return url


def _parse_sdgs(raw: list, problems: list[str], notes: list[str]) -> list[tuple[int, str | None, str | None]]:
    sdgs: dict[int, tuple[int, str | None, str | None]] = {}
    for entry in raw:
        # Two shapes occur: {"SDGNumber": 3, "evidenceText": …} and [3, "Good Health…"].
        if isinstance(entry, dict):
            number, text, url = entry.get("SDGNumber"), entry.get("evidenceText"), entry.get("evidenceURL")
        elif isinstance(entry, list) and entry:
            number, text, url = entry[0], None, None
        else:
            problems.append(f"SDG entry {entry!r} is neither an object nor a list")
            continue
        if isinstance(number, str) and number.strip().isascii() and number.strip().isdigit():
            number = int(number.strip())
        if not isinstance(number, int) or isinstance(number, bool):
            problems.append(f"SDG number {number!r} is not a whole number")
            continue
        if not 1 <= number <= 17:
            problems.append(f"SDG number {number} is outside 1–17")
            continue
        sdgs.setdefault(number, (number, _text(text), _url_or_note(url, f"SDG {number} evidence URL", notes)))
    return sorted(sdgs.values())


def _parse_urls(record: dict, problems: list[str], notes: list[str]) -> list[_RepoUrl]:
    entries: list[tuple[str | None, str]] = []
    for repo in _list_field(record, "repositories", problems):
        if isinstance(repo, dict):
            label = _text(repo.get("name"))
            entries.append((label[:300] if label else None, repo.get("url")))
        elif isinstance(repo, str):
            entries.append((None, repo))
        else:
            problems.append(f"repository entry {repo!r} is neither an object nor a URL")
    # Older records use a single "repositoryURL" field instead of, or beside, "repositories".
    if _text(record.get("repositoryURL")):
        entries.append((None, record["repositoryURL"]))
    urls: list[_RepoUrl] = []
    seen: set[str] = set()
    for label, url in entries:
        if url is None or (isinstance(url, str) and not url.strip()):
            # The registry's form leaves an empty "main" entry when there is no repository.
            notes.append(f"repository {label!r} has an empty URL: ignored" if label
                         else "an empty repository URL: ignored")
            continue
        if not isinstance(url, str) or len(url) > 2000:
            problems.append(f"repository URL {str(url)[:80]!r} is not text of at most 2000 characters")
            continue
        note = None
        try:
            parsed = parse_repository_url(url)
        except InvalidRepositoryUrl as exc:
            found = _LABELLED_URL.match(url.strip())
            if found is None:
                problems.append(f"malformed repository URL {url!r} ({exc})")
                continue
            try:
                parsed = parse_repository_url(found.group(1))
            except InvalidRepositoryUrl as exc2:
                problems.append(f"malformed repository URL {url!r} ({exc2})")
                continue
            note = f"read {parsed.url} out of the malformed URL {url!r}"
        if parsed.url.lower() in seen:
            continue
        seen.add(parsed.url.lower())
        urls.append(_RepoUrl(label, parsed, note))
    return urls


def _validate(record: dict, index: int) -> tuple[_ProjectData | None, list[str]]:
    problems: list[str] = []
    notes: list[str] = []
    slug = _text(record.get("_id"))
    path = _text(record.get("_path")) or f"record #{index}"
    name = _text(record.get("name"))
    status = _status_of(record)
    if slug is None:
        problems.append("no _id (slug)")
    elif not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,199}", slug):
        problems.append(f"slug {slug!r} is not lower-case letters, digits, dots and dashes")
    if len(path) > 300:
        problems.append("_path is longer than 300 characters")
    if status is None:
        problems.append(f"_path {record.get('_path')!r} is not under nominees/, archive/ or excluded-nominees/")
    if name is None:
        problems.append("no name")
    elif len(name) > 300:
        problems.append("name is longer than 300 characters")
    nul = _find_nul(record)
    if nul:
        problems.append(f"{nul} contains a NUL character")
    if _text(record.get("stage")) and len(record["stage"]) > 40:
        problems.append("stage is longer than 40 characters")
    sdgs = _parse_sdgs(_list_field(record, "SDGs", problems), problems, notes)
    urls = _parse_urls(record, problems, notes)
    licence_entries = _list_field(record, "license", problems)
    organisation_entries = _list_field(record, "organizations", problems)
    if problems:
        return None, problems
    licences = [
        {"spdx": _text(lic.get("spdx")), "url": _url_or_note(lic.get("licenseURL"), "licence URL", notes)}
        for lic in licence_entries
        if isinstance(lic, dict) and (_text(lic.get("spdx")) or _text(lic.get("licenseURL")))
    ]
    organisations = [
        {
            "name": _text(org.get("name")),
            "website": _url_or_note(org.get("website"), "organisation website", notes),
            "org_type": _text(org.get("org_type")),
        }
        for org in organisation_entries
        if isinstance(org, dict) and _text(org.get("name"))
    ]
    fields = {
        "name": name,
        "aliases": [a for a in _str_list(record.get("aliases")) if a != name],
        "description": _text(record.get("description")) or "",
        "website": _url_or_note(record.get("website"), "website", notes),
        "licences": licences,
        "types": _str_list(record.get("type")),
        "sectors": _str_list(record.get("sectors")),
        "organisations": organisations,
        "registry_stage": _text(record.get("stage")),
        "registry_status": status,
        "registry_path": path,
    }
    return _ProjectData(slug, path, status, fields, sdgs, urls, notes), []


def import_registry(
    records: list[dict], *, include_archived: bool = False, skip_invalid: bool = False
) -> ImportSummary:
    """Create or update member projects from registry ``records``.

    Active records (``_path`` under ``nominees/``) are imported; with
    ``include_archived`` the archived and excluded ones too. When a slug occurs
    twice, the active record wins. Repository URLs become repositories (GitHub,
    GitLab including self-hosted hosts) or links (other hosts; organisation or
    group URLs, which are reported). Nothing is deleted: repositories added by
    maintainers stay.

    Raises :class:`RegistryError` naming every invalid record before anything is
    written, unless ``skip_invalid`` is set (then they are reported as invalid).
    Flushes; the caller commits.
    """
    summary = ImportSummary()
    selected: list[tuple[_ProjectData | None, RecordOutcome]] = []
    problems: list[str] = []
    for index, record in enumerate(records):
        status = _status_of(record)
        if status is not None and status is not RegistryStatus.active and not include_archived:
            summary.not_selected += 1
            continue
        data, record_problems = _validate(record, index)
        label = record.get("_path") or f"record #{index} ({record.get('_id') or 'no _id'})"
        if record_problems:
            problems.append(f"{label}: " + "; ".join(record_problems))
            outcome = RecordOutcome(str(record.get("_id") or ""), str(label), "invalid", record_problems)
            selected.append((None, outcome))
            continue
        selected.append((data, RecordOutcome(data.slug, data.path, "unchanged", list(data.notes))))
    if problems and not skip_invalid:
        raise RegistryError(problems)

    # A slug in nominees/ and archive/ alike: the active record wins.
    winner: dict[str, _ProjectData] = {}
    for data, _ in selected:
        if data is None:
            continue
        current = winner.get(data.slug)
        if current is None or (
            current.status is not RegistryStatus.active and data.status is RegistryStatus.active
        ):
            winner[data.slug] = data

    summary.records = [outcome for _, outcome in selected]
    # Active records first, so that a repository listed by an active and an
    # archived record goes to the active one whatever the file order.
    rank = {RegistryStatus.active: 0, RegistryStatus.archived: 1, RegistryStatus.excluded: 2}
    ordered = sorted(
        (pair for pair in selected if pair[0] is not None), key=lambda pair: rank[pair[0].status]
    )
    for data, outcome in ordered:
        if winner[data.slug] is not data:
            outcome.outcome = "skipped"
            outcome.reasons.append(f"slug also used by {winner[data.slug].path}, which is imported")
            continue
        _upsert(data, outcome)
    db.session.flush()
    return summary


def _upsert(data: _ProjectData, outcome: RecordOutcome) -> None:
    project = db.session.scalar(select(MemberProject).where(MemberProject.slug == data.slug))
    created = project is None
    changed: list[str] = []
    if created:
        project = MemberProject(slug=data.slug, **data.fields)
        db.session.add(project)
    else:
        for key, value in data.fields.items():
            if getattr(project, key) != value:
                setattr(project, key, value)
                changed.append(key)
    wanted_sdgs = {n: (t, u) for n, t, u in data.sdgs}
    have_sdgs = {s.sdg: (s.evidence_text, s.evidence_url) for s in project.sdgs}
    if wanted_sdgs != have_sdgs:
        project.sdgs = [
            ProjectSdg(sdg=n, evidence_text=t, evidence_url=u) for n, (t, u) in sorted(wanted_sdgs.items())
        ]
        if not created:
            changed.append("SDGs")
    db.session.flush()

    for repo_url in data.urls:
        parsed = repo_url.parsed
        if repo_url.note:
            outcome.reasons.append(repo_url.note)
        if parsed.is_repository:
            before = len(project.repositories)
            try:
                add_repository(project, parsed, label=repo_url.label, actor=ACTOR)
            except RepositoryConflict as exc:
                outcome.reasons.append(f"repository not attached: {exc}")
                continue
            if len(project.repositories) != before and not created:
                changed.append(f"repository {parsed.url}")
            continue
        kind = ProjectLinkKind.forge_namespace if parsed.is_namespace else ProjectLinkKind.other_host
        if parsed.is_namespace:
            outcome.reasons.append(
                f"{parsed.url} is an organisation or group, not a repository: kept as a link"
            )
        if any(link.url == parsed.url for link in project.links):
            continue
        project.links.append(ProjectLink(kind=kind, label=repo_url.label, url=parsed.url))
        if not created:
            changed.append(f"link {parsed.url}")

    if created:
        outcome.outcome = "created"
        audit.record("project.imported", "member_project", project.id, actor=ACTOR,
                     details={"registry_path": data.path})
    elif changed:
        outcome.outcome = "updated"
        outcome.reasons.insert(0, "changed: " + ", ".join(changed))
        audit.record("project.updated", "member_project", project.id, actor=ACTOR,
                     details={"registry_path": data.path, "changed": changed})
    else:
        outcome.outcome = "unchanged"
