"""Configuration read from environment variables (twelve-factor).

Every setting has a safe embedded default except ``SECRET_KEY``, which must be
set in production. ``create_app(config)`` lets tests and the CLI override any key.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"


def normalise_database_url(url: str) -> str:
    """Return a SQLAlchemy URL for ``url``, selecting the psycopg 3 driver.

    Hosting platforms hand out ``postgres://`` and ``postgresql://`` URLs; both
    are rewritten to ``postgresql+psycopg://``. Other URLs are returned as given.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment() -> dict:
    """Build the configuration mapping from ``os.environ``.

    Keys: ``SQLALCHEMY_DATABASE_URI`` (from ``DATABASE_URL``; default a SQLite
    file ``instance/backlog.sqlite3``), ``REDIS_URL`` (unset: jobs run
    in-process after commit), ``SECRET_KEY``, ``PORT`` (default 5000),
    ``BACKLOG_PAGE_SIZE`` (items per page, default 25), ``REPORTING_CURRENCY``
    (ISO 4217 code used to rank items by funding, default USD).
    """
    default_db = "sqlite:///" + str(INSTANCE_DIR / "backlog.sqlite3")
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL", default_db)
        ),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "PORT": int(os.environ.get("PORT", "5000")),
        "DEBUG": _bool("FLASK_DEBUG"),
        "BACKLOG_PAGE_SIZE": int(os.environ.get("BACKLOG_PAGE_SIZE", "25")),
        "REPORTING_CURRENCY": os.environ.get("REPORTING_CURRENCY", "USD").upper(),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "SUPPORTED_LOCALES": [
            code.strip()
            for code in os.environ.get("SUPPORTED_LOCALES", "en").split(",")
            if code.strip()
        ],
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "JSON_SORT_KEYS": False,
    }
