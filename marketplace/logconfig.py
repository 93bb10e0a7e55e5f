"""Logging for every process (web, workers, cron) through ``logging.config.dictConfig``.

- ``LOG_FORMAT``: ``text`` (default) or ``json`` (one object a line, for a
  log collector); ``LOG_LEVEL`` (default ``INFO``).
- Every record carries ``request_id`` (the ``X-Request-ID`` of the request
  it was logged in) and ``job_id`` (the RQ job it was logged in), ``-``
  outside them.
- No record shows a token link: paths of verification, reset and
  invitation links (``/verify/…``, ``/reset/…``, ``/invitations/…``) are
  cut to ``/verify/[redacted]`` in every message, access logs included.
- ``SENTRY_DSN``: errors also go to Sentry (Flask and RQ integrations) when
  the ``sentry-sdk`` package is installed; without it, a warning says so.
"""
from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from flask import g, has_app_context, has_request_context
from rq import get_current_job

try:  # optional: errors also go to Sentry when the package is installed and SENTRY_DSN is set
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration
except ImportError:  # pragma: no cover - depends on the installation
    sentry_sdk = None

# Tokens are URL-safe base64 with dots (itsdangerous), or percent-encoded.
TOKEN_PATH = re.compile(r"(/(?:verify|reset|invitations)/)[A-Za-z0-9_.~%=\-]+")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s job=%(job_id)s] %(message)s"


def redact(text: str) -> str:
    """``text`` with every token path replaced: ``/reset/abc.def`` → ``/reset/[redacted]``."""
    return TOKEN_PATH.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Replace token links in a record's message (after %-formatting) and in its traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class ContextIds(logging.Filter):
    """Give every record ``request_id`` and ``job_id`` (``-`` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id()
        if not hasattr(record, "job_id"):
            record.job_id = _job_id()
        return True


def _request_id() -> str:
    if has_request_context() and has_app_context():
        return g.get("request_id") or "-"
    return "-"


def _job_id() -> str:
    try:
        job = get_current_job()
    except Exception:  # no RQ connection in this process: not in a job
        return "-"
    return job.id if job is not None else "-"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message,
    request_id, job_id, and the traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "job_id": getattr(record, "job_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def logging_dict(settings: Mapping[str, str | None]) -> dict:
    """The ``dictConfig`` mapping for ``settings`` (the environment, or an app's
    config): ``LOG_FORMAT`` ``text``/``json``, ``LOG_LEVEL``. One handler on
    standard output at the root; Flask's, Werkzeug's, Gunicorn's and RQ's
    loggers pass their records to it. Raises ``ValueError`` for another
    format."""
    fmt = (settings.get("LOG_FORMAT") or "text").lower()
    if fmt not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be text or json, not {fmt!r}")
    level = (settings.get("LOG_LEVEL") or "INFO").upper()
    formatter = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    passing = {"handlers": [], "propagate": True}  # their own levels stay (make run quiets Werkzeug)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": ContextIds}, "redact": {"()": RedactTokens}},
        "formatters": {"main": formatter},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                                "formatter": "main", "filters": ["ids", "redact"]}},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {name: dict(passing) for name in
                    ("marketplace", "jobs", "werkzeug", "rq.worker", "gunicorn.error", "gunicorn.access")},
    }


def configure_logging(settings: Mapping[str, str | None]) -> None:
    """Apply :func:`logging_dict`, then Sentry when ``SENTRY_DSN`` is set."""
    logging.config.dictConfig(logging_dict(settings))
    dsn = settings.get("SENTRY_DSN")
    if dsn:
        _init_sentry(dsn)


def _init_sentry(dsn: str) -> None:
    if sentry_sdk is None:
        logging.getLogger(__name__).warning("SENTRY_DSN is set but sentry-sdk is not installed: errors stay in the log")
        return
    sentry_sdk.init(dsn=dsn, integrations=[FlaskIntegration(), RqIntegration()], send_default_pii=False)
