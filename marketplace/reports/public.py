"""The public reports (a service module of the reports domain): the commons
report and each member project's report, as JSON-ready dicts whose shapes
are the API's ``CommonsReport`` and ``ProjectReport`` schemas.

Every figure is per currency, in minor units, from the ledger entries
(aggregate GROUP BY queries in :mod:`marketplace.reports.queries`) or from
executed payouts' shares; no figure adds two currencies.

The training figures (issue 19: trainees, mentored merges, certifications
earned through training) ride along under ``training``: counted when the
report is asked for, never stored in the snapshot, by the one function the
report pages use (:func:`marketplace.reports.training.training_figures`), so
the page, the API and the CSV always show the same numbers.

Cheap on anonymous requests: a computed report is stored in
``report_snapshot`` and served from there until it is older than
``max_age`` seconds (``REPORTS_MAX_AGE_SECONDS``, 600 by default), so at most
one request per report per ten minutes runs the aggregate queries;
``flask reports refresh`` recomputes them all (cron, or after an import).
"""
from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marketplace.extensions import db
from marketplace.projects.models import MemberProject
from marketplace.reports import queries
from marketplace.reports.models import ReportSnapshot
from marketplace.reports.service import cell, major
from marketplace.reports.training import training_figures
from marketplace.timeutil import utcnow

FLOWS = ("received", "matched", "paid_out", "fees", "refunded", "lost")


def cached(key: str, max_age: int, compute) -> dict:
    """The stored report ``key`` when younger than ``max_age`` seconds, else
    ``compute()`` stored under ``key`` (flushed; the caller commits). Two
    requests refreshing at once both answer; one row is kept."""
    row = db.session.get(ReportSnapshot, key)
    now = utcnow()
    if row is not None and max_age > 0 and now - row.computed_at < timedelta(seconds=max_age):
        return row.data
    data = compute()
    data["computed_at"] = now.isoformat() + "Z"
    try:
        with db.session.begin_nested():
            if row is None:
                db.session.add(ReportSnapshot(key=key, computed_at=now, data=data))
            else:
                row.computed_at, row.data = now, data
    except IntegrityError:
        pass  # another request stored it first: its figures are as fresh
    return data


def _figures_by_currency(months: list[tuple[str, str, str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for _month, currency, figure, value in months:
        out.setdefault(currency, dict.fromkeys(FLOWS, 0))[figure] += value
    return out


def _by_month(months: list[tuple[str, str, str, int]]) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for month, currency, figure, value in months:
        rows.setdefault((month, currency), {"month": month, "currency": currency, **dict.fromkeys(FLOWS, 0)})
        rows[(month, currency)][figure] += value
    return [rows[key] for key in sorted(rows)]


def _shares_figures(shares: list[tuple], deployment: dict[int, set[str]]) -> tuple[list[dict], list[dict], int]:
    """By recipient country, the share of payouts to implementors in the
    project's deployment countries (local / elsewhere / country not given),
    and how many items had a payout executed."""
    by_country: dict[tuple[str | None, str], int] = defaultdict(int)
    local: dict[str, dict[str, int]] = {}
    items = set()
    for _payout, project_id, item_id, currency, amount, _recipient, country, _at, _fee in shares:
        items.add(item_id)
        by_country[(country, currency)] += amount
        row = local.setdefault(currency, {"currency": currency, "local": 0, "elsewhere": 0, "unknown": 0})
        if country is None:
            row["unknown"] += amount
        elif country in deployment.get(project_id, ()):
            row["local"] += amount
        else:
            row["elsewhere"] += amount
    countries = [{"country": c, "currency": cur, "paid_to_recipients": v}
                 for (c, cur), v in sorted(by_country.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0] or ""))]
    return countries, [local[c] for c in sorted(local)], len(items)


def _median_days(rows) -> float | None:
    """Median days from an item's first pledge held to the merge of the change that solved it
    (items funded only after the merge are left out)."""
    days = [(merged - first).total_seconds() / 86400 for _item, first, merged in rows if merged >= first]
    return round(statistics.median(days), 1) if days else None


def _currencies(months, held: dict[str, int]) -> list[dict]:
    figures = _figures_by_currency(months)
    for currency in held:
        figures.setdefault(currency, dict.fromkeys(FLOWS, 0))
    return [{"currency": c, **figures[c], "held": held.get(c, 0)} for c in sorted(figures)]


def compute_commons_report() -> dict:
    """The commons report (see :func:`commons_report`), computed now."""
    months = queries.money_by_month()
    held: dict[str, int] = defaultdict(int)
    for _pid, currency, value in queries.held_by_project():
        held[currency] += value
    sdgs = queries.project_sdgs()
    by_sdg: dict[tuple[int, str], dict] = {}
    for pid, currency, kind, value in queries.escrow_flows_by_project():
        for sdg in sdgs.get(pid, ()):
            row = by_sdg.setdefault((sdg, currency), {"sdg": sdg, "currency": currency, "received": 0,
                                                      "paid_out": 0})
            if kind == "pledge_received":
                row["received"] += value
            elif kind in ("payout_released", "payout_returned"):
                row["paid_out"] -= value
    countries, local, solved = _shares_figures(queries.executed_payout_shares(), queries.deployment_countries())
    return {
        "currencies": _currencies(months, held),
        "by_month": _by_month(months),
        "by_sdg": [by_sdg[key] for key in sorted(by_sdg)],
        "by_country": countries,
        "local_share": local,
        "items_solved_with_funding": solved,
        "median_days_to_merge": _median_days(queries.first_funding_and_merge()),
    }


def commons_report(max_age: int = 600) -> dict:
    """Per currency: received, matched, paid out, fees, refunded, lost and held;
    the same by month (``YYYY-MM``, UTC); received and paid out by SDG (a
    project counts in each of its SDGs, so SDG rows overlap and are not
    added up); paid to recipients by their country; the share of payouts to
    implementors based where the project is deployed; items whose payout
    executed; median days from first funding to merge; and ``training``
    (:func:`with_training`, counted now)."""
    return with_training(cached("commons", max_age, compute_commons_report))


def compute_project_report(project: MemberProject) -> dict:
    """The project's report (see :func:`project_report`), computed now."""
    months = queries.money_by_month(project.id)
    held = {currency: value for _pid, currency, value in queries.held_by_project(project.id)}
    deployment = queries.countries_of(project.id, "deployment")
    countries, local, solved = _shares_figures(queries.executed_payout_shares(project.id),
                                               {project.id: set(deployment)})
    return {
        "project": project.slug,
        "name": project.name,
        "sdgs": sorted(s.sdg for s in project.sdgs),
        "deployment_countries": deployment,
        "development_countries": queries.countries_of(project.id, "development"),
        "currencies": _currencies(months, held),
        "by_month": _by_month(months),
        "by_country": countries,
        "local_share": local,
        "items_solved_with_funding": solved,
        "median_days_to_merge": _median_days(queries.first_funding_and_merge(project.id)),
    }


def project_report(project: MemberProject, max_age: int = 600) -> dict:
    """A member project's public report: the commons report's figures for its
    items, its SDGs, and its deployment and development countries; and its
    ``training`` figures (:func:`with_training`, counted now)."""
    return with_training(cached(f"project:{project.id}", max_age, lambda: compute_project_report(project)),
                         project.id)


def with_training(report: dict, project_id: int | None = None) -> dict:
    """A copy of ``report`` (a stored snapshot is left as it is) with ``training``:
    :func:`marketplace.reports.training.training_figures` counted now, every
    project's or only ``project_id``'s (shape: the API's ``TrainingFigures``)."""
    return {**report, "training": training_figures(project_id)}


REPORT_CSV_HEADER = ["section", "key", "currency", "figure", "amount"]
TRAINING_FIGURES = ("trainees", "mentored_merges", "certifications")


def refresh_all() -> int:
    """Recompute and store the commons report and the report of every project whose
    items ever held money (the others' reports are empty and computed when asked);
    returns how many were computed. Flushes; the caller commits."""
    commons_report(max_age=0)
    ids = queries.projects_with_money()
    for project in db.session.scalars(select(MemberProject).where(MemberProject.id.in_(ids))):
        project_report(project, max_age=0)
    return len(ids) + 1


def report_csv(report: dict) -> str:
    """A report as CSV (UTF-8, header ``section,key,currency,figure,amount``):
    amounts as decimals in major units beside their currency, never floats;
    sections ``total``, ``month``, ``sdg``, ``recipient_country``, ``local_share``;
    then, when the report has ``training`` (:func:`with_training`), people and
    merges counted (whole numbers, currency empty): ``training_total`` (key
    empty), ``training_project`` (key: the project's name) and
    ``training_country`` (key: the trainee's ISO 3166-1 code, empty when not
    given; keys are free text through :func:`~marketplace.reports.service.cell`),
    each with the figures ``trainees``, ``mentored_merges`` and ``certifications``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_CSV_HEADER)
    for row in report["currencies"]:
        for figure in (*FLOWS, "held"):
            writer.writerow(["total", "", row["currency"], figure, major(row[figure], row["currency"])])
    for row in report["by_month"]:
        for figure in FLOWS:
            if row[figure]:
                writer.writerow(["month", row["month"], row["currency"], figure, major(row[figure], row["currency"])])
    for row in report.get("by_sdg", []):
        for figure in ("received", "paid_out"):
            writer.writerow(["sdg", row["sdg"], row["currency"], figure, major(row[figure], row["currency"])])
    for row in report["by_country"]:
        writer.writerow(["recipient_country", row["country"] or "", row["currency"], "paid_to_recipients",
                         major(row["paid_to_recipients"], row["currency"])])
    for row in report["local_share"]:
        for figure in ("local", "elsewhere", "unknown"):
            writer.writerow(["local_share", "", row["currency"], figure, major(row[figure], row["currency"])])
    training = report.get("training")
    if training:
        for figure in TRAINING_FIGURES:
            writer.writerow(["training_total", "", "", figure, training["totals"][figure]])
        for section, rows in (("training_project", training["by_project"]),
                              ("training_country", training["by_country"])):
            for row in rows:
                for figure in TRAINING_FIGURES:
                    writer.writerow([section, cell(row["key"]), "", figure, row[figure]])
    return out.getvalue()
