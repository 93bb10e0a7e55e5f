"""The DPG Standard screening records (``seed/dpg/screening.json``): each
member project's deployment and development countries, normalised to ISO
3166-1 alpha-2 codes. A service of the reports domain: flushes, never commits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from marketplace.extensions import db
from marketplace.projects.models import MemberProject
from marketplace.reports.countries import normalise
from marketplace.reports.models import ProjectCountry

FIELDS = {"deployment": "deploymentCountries", "development": "developmentCountries"}


@dataclass
class ScreeningSummary:
    """What an import did: projects updated, records without a member project
    (their slugs), country names that could not be normalised (name → slugs)."""

    projects: int = 0
    countries: int = 0
    no_project: list[str] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    blank: int = 0  # empty country names in the records

    def lines(self) -> list[str]:
        """The summary line, then one line per country name not normalised."""
        head = (f"{self.projects} projects with {self.countries} countries; "
                f"{len(self.no_project)} records without a member project; "
                f"{len(self.unmatched)} country names not normalised; {self.blank} empty names skipped")
        return [head] + [f"not normalised: {name!r} (in {', '.join(sorted(slugs))})"
                         for name, slugs in sorted(self.unmatched.items())]


def load_screening_file(path: str | Path) -> dict:
    """The screening records: an object keyed by project slug."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError("the screening file holds an object keyed by project slug")
    return data


def import_screening(records: dict) -> ScreeningSummary:
    """Replace the countries of each member project whose slug has a record
    with the record's ``locations`` (both kinds), normalised; records of
    other slugs are reported. Running it twice leaves the same rows."""
    summary = ScreeningSummary()
    projects = {p.slug: p.id for p in db.session.scalars(select(MemberProject))}
    for slug, record in sorted(records.items()):
        project_id = projects.get(slug)
        if project_id is None:
            summary.no_project.append(slug)
            continue
        locations = (record or {}).get("locations") or {}
        db.session.execute(delete(ProjectCountry).where(ProjectCountry.project_id == project_id))
        for kind, key in FIELDS.items():
            names = [n for n in locations.get(key) or [] if isinstance(n, str)]
            summary.blank += sum(1 for n in names if not n.strip())
            codes, unmatched = normalise(names)
            for name in unmatched:
                summary.unmatched.setdefault(name, []).append(slug)
            for code in codes:
                db.session.add(ProjectCountry(project_id=project_id, kind=kind, country=code))
                summary.countries += 1
        summary.projects += 1
    db.session.flush()
    return summary
