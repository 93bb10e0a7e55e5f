"""The reports as JSON under ``/api/v1/reports`` (documented in ``/api/v1/openapi.json``)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify

from marketplace.api import report_schemas as schemas
from marketplace.backlog.search import project_with_details
from marketplace.extensions import db
from marketplace.reports import public

bp = Blueprint("api_reports", __name__, url_prefix="/api/v1/reports")


def _max_age() -> int:
    return current_app.config.get("REPORTS_MAX_AGE_SECONDS", 600)


@bp.get("/commons")
def commons():
    """The commons report (schema ``CommonsReport``)."""
    report = public.commons_report(max_age=_max_age())
    db.session.commit()  # a refreshed snapshot is stored
    return jsonify(schemas.CommonsReport(**report).model_dump(mode="json"))


@bp.get("/projects/<slug>")
def project(slug: str):
    """A member project's report (schema ``ProjectReport``)."""
    row = project_with_details(slug)
    if row is None:
        abort(404)
    report = public.project_report(row, max_age=_max_age())
    db.session.commit()
    return jsonify(schemas.ProjectReport(**report).model_dump(mode="json"))
