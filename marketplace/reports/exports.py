"""The public data export: one dated ZIP archive anyone can download, for
others to build on. A service of the reports domain (it reads; the archive
is a file in ``REPORTS_EXPORT_DIR``, ``instance/exports`` by default).

Contents (CSV: UTF-8 with a header row; money as a decimal in major units
beside its ISO 4217 code): ``projects.csv``, ``items.csv`` (public items
only), ``pledges.csv`` (received pledges; the funder's name only where they
chose to show it), ``payouts.csv`` (executed payouts with fee and pull
request), ``commons_report.json`` and ``commons_report.csv``, ``README.txt``.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.payouts.models import Payout
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.projects.models import MemberProject
from marketplace.reports import public, queries
from marketplace.reports.service import cell, major
from marketplace.timeutil import utcnow

ARCHIVE_NAME = re.compile(r"^backlog-commons-(\d{4}-\d{2}-\d{2})\.zip$")
NEVER_RECEIVED = (PledgeState.pending, PledgeState.processing, PledgeState.failed, PledgeState.cancelled)

README = """Backlog Commons: public data export of {day} (UTC)

projects.csv        member projects, their SDGs and deployment / development countries (ISO 3166-1)
items.csv           public backlog items (hidden, private or deleted ones are left out)
pledges.csv         pledges whose money arrived; funder named only where they chose to be shown
payouts.csv         executed payouts: released from escrow (gross), fee, pull request
commons_report.*    the commons report's figures (JSON: minor units; CSV: major units), training figures too

Money is never added across currencies. Amounts in the CSV files are decimals
in the currency's major unit beside its ISO 4217 code.

Sources: member projects from the DPG registry (DPGAlliance/publicgoods-candidates,
The Unlicense); item titles and URLs belong to their authors on each forge, under
the forge's and the repository's terms; the money figures are the commons' ledger.
"""


def _csv(header: list[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _projects() -> str:
    deployment, development = queries.deployment_countries(), queries.deployment_countries("development")
    rows = []
    for p in db.session.scalars(select(MemberProject).options(selectinload(MemberProject.sdgs))
                                .order_by(MemberProject.slug)):
        sdgs = " ".join(str(n) for n in sorted(s.sdg for s in p.sdgs))
        rows.append([p.slug, cell(p.name), cell(p.website), sdgs, " ".join(sorted(deployment.get(p.id, ()))),
                     " ".join(sorted(development.get(p.id, ())))])
    return _csv(["slug", "name", "website", "sdgs", "deployment_countries", "development_countries"], rows)


def _items() -> str:
    rows = db.session.execute(
        select(BacklogItem.id, MemberProject.slug, Repository.owner, Repository.name, BacklogItem.number,
               BacklogItem.title, BacklogItem.html_url, BacklogItem.state, BacklogItem.solved_by_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .join(MemberProject, MemberProject.id == Repository.project_id)
        .where(BacklogItem.hidden.is_(False)).order_by(BacklogItem.id)).all()
    return _csv(["id", "project", "repository", "number", "title", "url", "forge_state", "solved_by_merge"],
                [[i, slug, f"{owner}/{name}", n, cell(title), cell(url), state.value, "yes" if solved else "no"]
                 for i, slug, owner, name, n, title, url, state, solved in rows])


def _pledges() -> str:
    rows = db.session.execute(
        select(Pledge, User.display_name).join(User, User.id == Pledge.funder_id)
        .join(BacklogItem, BacklogItem.id == Pledge.item_id)
        .where(Pledge.state.not_in(NEVER_RECEIVED), BacklogItem.hidden.is_(False)).order_by(Pledge.id)).all()
    return _csv(["id", "item", "funder", "currency", "amount", "refunded", "state", "received_on"],
                [[p.id, p.item_id, cell(name) if p.show_name else "", p.currency, major(p.amount_minor, p.currency),
                  major(p.refunded_minor, p.currency), p.state.value, p.held_at.date().isoformat() if p.held_at else ""]
                 for p, name in rows])


def _payouts() -> str:
    rows = db.session.execute(
        select(Payout, PullRequest.html_url).outerjoin(PullRequest, PullRequest.id == Payout.pull_request_id)
        .join(BacklogItem, BacklogItem.id == Payout.item_id)
        .where(Payout.executed_at.is_not(None), BacklogItem.hidden.is_(False)).order_by(Payout.id)).all()
    return _csv(["id", "item", "currency", "gross", "fee", "to_recipients", "state", "executed_on", "pull_request"],
                [[p.id, p.item_id, p.currency, major(p.gross_minor, p.currency), major(p.fee_minor, p.currency),
                  major(p.gross_minor - p.fee_minor, p.currency), p.state.value, p.executed_at.date().isoformat(),
                  url or ""] for p, url in rows])


def export_directory() -> Path:
    """Where archives are written and served from: ``REPORTS_EXPORT_DIR``, else ``<instance>/exports``."""
    return Path(current_app.config.get("REPORTS_EXPORT_DIR") or Path(current_app.instance_path) / "exports")


def build_archive(directory: Path, day: date) -> Path:
    """Write ``backlog-commons-{day}.zip`` into ``directory`` (created when
    missing; an archive of the same day is replaced, written to a temporary
    name first so a download never sees half a file). Returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    report = public.with_training(public.compute_commons_report())
    report["computed_at"] = utcnow().isoformat() + "Z"
    target = directory / f"backlog-commons-{day.isoformat()}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README.format(day=day.isoformat()))
        archive.writestr("projects.csv", _projects())
        archive.writestr("items.csv", _items())
        archive.writestr("pledges.csv", _pledges())
        archive.writestr("payouts.csv", _payouts())
        archive.writestr("commons_report.json", json.dumps(report, indent=1, sort_keys=True))
        archive.writestr("commons_report.csv", public.report_csv(report))
    partial.replace(target)
    return target


def archives(directory: Path) -> list[tuple[date, Path, int]]:
    """The archives in ``directory``, newest first: (day, path, size in bytes)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = ARCHIVE_NAME.match(path.name)
        if match:
            found.append((date.fromisoformat(match.group(1)), path, path.stat().st_size))
    return sorted(found, reverse=True)
