"""``/healthz`` and ``/readyz`` (see :mod:`marketplace.health`)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from marketplace.extensions import limiter
from marketplace.health.service import readiness

bp = Blueprint("health", __name__)
limiter.exempt(bp)


@bp.get("/healthz")
def healthz():
    """The process is up: ``{"status": "ok"}``, 200, without touching the database or Redis."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """200 ``{"status": "ready", …checks}`` when the database and Redis answer;
    503 ``{"status": "not ready", "down": [names], …checks}`` otherwise."""
    ready, checks = readiness(current_app)
    if ready:
        return jsonify(status="ready", **checks)
    down = sorted(name for name, value in checks.items() if str(value).startswith("down"))
    response = jsonify(status="not ready", down=down, **checks)
    response.status_code = 503
    return response
