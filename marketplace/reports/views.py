"""Report pages: funder statements (private to the person, or to an
organisation's members and admins), grants and their audit packs; the public
project and commons reports and their CSV downloads."""
from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.access import current_actor, project_or_404
from marketplace.accounts.models import Organisation
from marketplace.extensions import db
from marketplace.organisations import service as organisations
from marketplace.reports import charts, public, service
from marketplace.reports import exports as export_service
from marketplace.reports.countries import country_names
from marketplace.reports.forms import GrantForm, PeriodForm, TagForm
from marketplace.reports.models import Grant
from marketplace.timeutil import utcnow

bp = Blueprint("reports", __name__)
CHART_MONTHS = 24
CHART_COUNTRIES = 15
EXPORTS_LISTED = 31  # the latest archives listed; older ones stay at their dated address


@bp.app_context_processor
def report_helpers() -> dict:
    """``country_names(codes)``: ISO 3166-1 codes as names in the reader's locale, comma-separated."""
    return {"country_names": country_names}


def conversions(by_currency: dict[str, dict[str, int]], figures: list[str]) -> list[tuple[str, service.Conversion]]:
    """The optional reporting conversion (``REPORTING_RATES`` into ``REPORTING_CURRENCY``) of
    ``figures``, each across the currencies; empty when no rate is configured."""
    rates = service.parse_rates(current_app.config.get("REPORTING_RATES", ""))
    if not rates:
        return []
    target = current_app.config["REPORTING_CURRENCY"]
    return [(figure, service.convert({cur: values[figure] for cur, values in by_currency.items()}, target, rates))
            for figure in figures]


def report_charts(report: dict) -> dict[str, list]:
    """Per currency, the report's SVG charts: money in and out by month, paid out by SDG,
    paid to recipients by country (each None when it has no data)."""
    out: dict[str, list] = {}
    for row in report["currencies"]:
        cur = row["currency"]
        # The last 24 months and the 15 countries paid most are drawn (the page stays small);
        # the CSV and the JSON have every row.
        months = [(m["month"], [m["received"] + m["matched"], m["paid_out"]])
                  for m in report["by_month"] if m["currency"] == cur][-CHART_MONTHS:]
        sdgs = [(_("SDG %(number)s", number=s["sdg"]), [s["received"], s["paid_out"]])
                for s in report.get("by_sdg", []) if s["currency"] == cur]
        paid = sorted((c for c in report["by_country"] if c["currency"] == cur),
                      key=lambda c: -c["paid_to_recipients"])
        countries = [(country_names([c["country"]]) if c["country"] else _("not given"), [c["paid_to_recipients"]])
                     for c in paid[:CHART_COUNTRIES]]
        if len(paid) > CHART_COUNTRIES:
            rest = paid[CHART_COUNTRIES:]
            countries.append((_("%(num)s other countries", num=len(rest)),
                              [sum(c["paid_to_recipients"] for c in rest)]))
        out[cur] = [
            charts.bar_chart(f"months-{cur}", _("Money in and out by month, %(currency)s", currency=cur),
                             _("For each month (UTC): money received from funders and pools, and money paid out."),
                             cur, [_("In"), _("Out")], months),
            charts.bar_chart(f"sdgs-{cur}", _("Money by SDG, %(currency)s", currency=cur),
                             _("For each SDG: money received and paid out on items of projects that cite it. A "
                               "project citing several SDGs counts in each."), cur, [_("In"), _("Out")], sdgs),
            charts.bar_chart(f"countries-{cur}", _("Paid to recipients by their country, %(currency)s", currency=cur),
                             _("For each country implementors gave: what their payout shares came to."),
                             cur, [_("Paid")], countries),
        ]
    return out


def _csv(text: str, filename: str) -> Response:
    return Response(text, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _period(form: PeriodForm) -> tuple[date, date]:
    today = utcnow().date()
    return form.start.data or date(today.year, 1, 1), form.end.data or today


def _statement_page(template: str, title: str, compute, *, filename: str, **context):
    """Render a statement for the period in the query string, or its CSV with ``?format=csv``;
    a bad period answers 400 with the message and the typed values."""
    form = PeriodForm(request.args)
    if request.args and not form.validate():
        return render_template(template, form=form, st=None, title=title, **context), 400
    start, end = _period(form)
    try:
        bounds = service.period_bounds(start, end)
    except service.ReportError as error:
        form.end.errors = [str(error)]
        return render_template(template, form=form, st=None, title=title, **context), 400
    st = compute(*bounds)
    if request.args.get("format") == "csv":
        return _csv(service.statement_csv(st), f"{filename}-{start.isoformat()}-{end.isoformat()}.csv")
    converted = conversions({cur: cs.figures for cur, cs in st.currencies.items()},
                            ["received", "paid_out", "held_at_close"])
    return render_template(template, form=form, st=st, title=title, start=start, end=end, converted=converted,
                           **context)


@bp.get("/statements/me")
@login_required
def my_statement():
    """The signed-in person's statement of their own pledges."""
    me = current_actor()
    return _statement_page("reports/statement.html", _("Your statement"),
                           lambda s, e: service.person_statement(me, s, e), filename="statement")


def _organisation_for_member(slug: str) -> Organisation:
    org = organisations.by_slug(slug)
    if org is None:
        abort(404)
    if not service.may_see_organisation(current_user, org):
        abort(403)
    return org


@bp.get("/organisations/<slug>/statement")
@login_required
def organisation_statement(slug: str):
    """The statement of the pledges made on behalf of an organisation (members and admins only)."""
    org = _organisation_for_member(slug)
    return _statement_page("reports/statement.html", _("Statement of %(name)s", name=org.name),
                           lambda s, e: service.organisation_statement(org, s, e),
                           filename=f"statement-{org.slug}", org=org, grants=service.grants_of(org))


@bp.route("/organisations/<slug>/grants", methods=["GET", "POST"])
@login_required
def grants(slug: str):
    """An organisation's grants; a member adds one."""
    org = _organisation_for_member(slug)
    form = GrantForm()
    if form.validate_on_submit():
        try:
            grant = service.create_grant(org, name=form.name.data, reference=form.reference.data,
                                         starts_on=form.starts_on.data, ends_on=form.ends_on.data,
                                         currency=form.currency.data, actor=current_actor())
        except service.ReportError as error:
            db.session.rollback()
            flash(str(error), "error")
        else:
            db.session.commit()
            return redirect(url_for("reports.grant", grant_id=grant.id))
    status = 400 if request.method == "POST" else 200
    return render_template("reports/grants.html", org=org, form=form, grants=service.grants_of(org)), status


def _grant_for_member(grant_id: int) -> Grant:
    grant = db.session.get(Grant, grant_id)
    if grant is None:
        abort(404)
    if not service.may_see_organisation(current_user, grant.organisation):
        abort(403)
    return grant


@bp.route("/grants/<id:grant_id>", methods=["GET", "POST"])
@login_required
def grant(grant_id: int):
    """A grant's statement over its period, and the organisation's pledges to tag with it."""
    grant = _grant_for_member(grant_id)
    form = TagForm()
    form.pledges.choices = [(p.id, p.id) for p in service.taggable_pledges(grant)]
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                count = service.tag_pledges(grant, form.pledges.data, actor=current_actor())
            except service.ReportError as error:
                db.session.rollback()
                flash(str(error), "error")
            else:
                db.session.commit()
                flash(_("%(num)s pledges tagged with this grant.", num=count))
                return redirect(url_for("reports.grant", grant_id=grant.id))
        return render_template("reports/grant.html", grant=grant, st=service.grant_statement(grant), form=form,
                               taggable=service.taggable_pledges(grant)), 400
    return render_template("reports/grant.html", grant=grant, st=service.grant_statement(grant), form=form,
                           taggable=service.taggable_pledges(grant))


@bp.get("/grants/<id:grant_id>/audit-pack")
@login_required
def audit_pack(grant_id: int):
    """The grant's statement as a printable page (print stylesheet, page numbers, no JavaScript)."""
    grant = _grant_for_member(grant_id)
    return render_template("reports/audit_pack.html", grant=grant, st=service.grant_statement(grant),
                           printed_at=utcnow())


@bp.get("/grants/<id:grant_id>/audit-pack/statement.csv")
@login_required
def audit_statement_csv(grant_id: int):
    """The grant's statement as CSV, with a checksum line."""
    grant = _grant_for_member(grant_id)
    return _csv(service.statement_csv(service.grant_statement(grant)), f"grant-{grant.id}-statement.csv")


@bp.get("/grants/<id:grant_id>/audit-pack/entries.csv")
@login_required
def audit_entries_csv(grant_id: int):
    """Every ledger entry behind the grant's statement, with a checksum line."""
    grant = _grant_for_member(grant_id)
    return _csv(service.entries_csv(service.grant_statement(grant)), f"grant-{grant.id}-ledger-entries.csv")


# --- public reports ------------------------------------------------------------------------

@bp.get("/reports")
def commons_report():
    """The commons report: money in and out by month, by SDG and by recipient country, per currency."""
    report = public.commons_report(max_age=current_app.config.get("REPORTS_MAX_AGE_SECONDS", 600))
    db.session.commit()  # a refreshed snapshot is stored
    if request.args.get("format") == "csv":
        return _csv(public.report_csv(report), f"commons-report-{report['computed_at'][:10]}.csv")
    return render_template("reports/commons.html", report=report, charts=report_charts(report),
                           training=report["training"],
                           converted=conversions({r["currency"]: r for r in report["currencies"]},
                                                 ["received", "paid_out", "held"]))


@bp.get("/projects/<slug>/report")
def project_report(slug: str):
    """A member project's public report."""
    project = project_or_404(slug)
    report = public.project_report(project, max_age=current_app.config.get("REPORTS_MAX_AGE_SECONDS", 600))
    db.session.commit()
    if request.args.get("format") == "csv":
        return _csv(public.report_csv(report), f"project-report-{project.slug}-{report['computed_at'][:10]}.csv")
    return render_template("reports/project.html", project=project, report=report, charts=report_charts(report),
                           training=report["training"],
                           converted=conversions({r["currency"]: r for r in report["currencies"]},
                                                 ["received", "paid_out", "held"]))


@bp.get("/exports")
def exports():
    """The dated public data export archives, newest first."""
    found = export_service.archives(export_service.export_directory())
    return render_template("reports/exports.html", archives=found[:EXPORTS_LISTED], older=len(found) - EXPORTS_LISTED)


@bp.get("/exports/backlog-commons-<day>.zip")
def export_archive(day: str):
    """One archive, by its date (YYYY-MM-DD)."""
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        abort(404)
    for found_day, path, _size in export_service.archives(export_service.export_directory()):
        if found_day == wanted:
            return send_file(path, mimetype="application/zip", as_attachment=True, download_name=path.name)
    abort(404)
