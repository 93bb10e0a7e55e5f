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


def _int(name: str, default: int, low: int, high: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    if not value.strip().isascii() or not value.strip().isdigit() or not low <= int(value) <= high:
        raise RuntimeError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def is_production(config) -> bool:
    """True for a production configuration: ``APP_ENV=production``, or
    ``APP_ENV`` unset with neither debug nor testing on and an https
    ``PUBLIC_URL`` (the address people reach the site at)."""
    env = config.get("APP_ENV")
    if env:
        return env == "production"
    if config.get("DEBUG") or config.get("TESTING"):
        return False
    return (config.get("PUBLIC_URL") or "").startswith("https://")


def production_refusals(config) -> list[str]:
    """Why a production configuration (:func:`is_production`) must not start;
    empty when it may, or when it is not production.

    Refused: no mail transport (``MAIL_SERVER``; the log and the local
    Maildir are for development, and a verification or reset link must not
    sit in a log file), no ``TRUSTED_HOSTS`` (links in the API are built from
    the Host header), and no ``REDIS_URL`` unless ``JOBS_IN_PROCESS`` is set.
    """
    if not is_production(config):
        return []
    reasons = []
    if not config.get("MAIL_SERVER"):
        reasons.append("MAIL_SERVER is not set (without it e-mails would go to the log, links and all)")
    if not config.get("TRUSTED_HOSTS"):
        reasons.append("TRUSTED_HOSTS is not set (links in the API would take the request's Host header)")
    if not config.get("REDIS_URL") and not config.get("JOBS_IN_PROCESS"):
        reasons.append("REDIS_URL is not set (set JOBS_IN_PROCESS=1 to run every job in the web process)")
    return reasons


def from_environment() -> dict:
    """Build the configuration mapping from ``os.environ``.

    Keys: ``SQLALCHEMY_DATABASE_URI`` (from ``DATABASE_URL``; default a SQLite
    file ``instance/backlog.sqlite3``), ``REDIS_URL`` (unset: jobs run
    in-process after commit), ``SECRET_KEY``, ``PORT`` (default 5000),
    ``BACKLOG_PAGE_SIZE`` (items per page, 1–100, default 25), ``REPORTING_CURRENCY``
    (ISO 4217 code used to rank items by funding, default USD), ``TRUSTED_HOSTS``
    (comma-separated host names; unset accepts any Host header).

    Raises ``RuntimeError`` for a number setting that is not a number in range.
    """
    default_db = "sqlite:///" + str(INSTANCE_DIR / "backlog.sqlite3")
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL", default_db)
        ),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "PORT": _int("PORT", 5000, 1, 65535),
        "DEBUG": _bool("FLASK_DEBUG"),
        "BACKLOG_PAGE_SIZE": _int("BACKLOG_PAGE_SIZE", 25, 1, 100),
        "REPORTING_CURRENCY": os.environ.get("REPORTING_CURRENCY", "USD").upper(),
        # Reports' optional conversion into REPORTING_CURRENCY, stated with each rate and its date:
        # "EUR=1.0832@2026-11-30,KES=0.00775@2026-11-30" (one unit of EUR is 1.0832 of the reporting currency).
        "REPORTING_RATES": os.environ.get("REPORTING_RATES", ""),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "SUPPORTED_LOCALES": [
            code.strip()
            for code in os.environ.get("SUPPORTED_LOCALES", "en,fr,es,pt").split(",")
            if code.strip()
        ]
        or ["en"],
        # Host names this site answers to; links in the API are built from the
        # request's Host header, so production must list its own names.
        "TRUSTED_HOSTS": [
            host.strip() for host in os.environ.get("TRUSTED_HOSTS", "").split(",") if host.strip()
        ]
        or None,
        "GITHUB_API_URL": os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        "GITHUB_TOKEN": os.environ.get("GITHUB_TOKEN") or None,
        "GITHUB_WEBHOOK_SECRET": os.environ.get("GITHUB_WEBHOOK_SECRET") or None,
        "GITHUB_APP_ID": os.environ.get("GITHUB_APP_ID") or None,
        "GITHUB_APP_PRIVATE_KEY": os.environ.get("GITHUB_APP_PRIVATE_KEY") or None,
        "GITHUB_APP_PRIVATE_KEY_FILE": os.environ.get("GITHUB_APP_PRIVATE_KEY_FILE") or None,
        "GITLAB_API_URLS": os.environ.get("GITLAB_API_URLS") or None,
        "GITLAB_TOKEN": os.environ.get("GITLAB_TOKEN") or None,
        "GITLAB_TOKENS": os.environ.get("GITLAB_TOKENS") or None,
        "GITLAB_WEBHOOK_TOKEN": os.environ.get("GITLAB_WEBHOOK_TOKEN") or None,
        "ALLOWED_CURRENCIES": [
            code.strip().upper()
            for code in os.environ.get("ALLOWED_CURRENCIES", "USD,EUR,GBP,KES,INR,JPY").split(",")
            if code.strip()
        ],
        # Per-pledge ceiling, in major units of the pledge's currency; above the
        # second figure the funder ticks a confirmation.
        "PLEDGE_MAX_AMOUNT": _int("PLEDGE_MAX_AMOUNT", 100_000, 1, 10**12),
        "PLEDGE_CONFIRM_ABOVE": _int("PLEDGE_CONFIRM_ABOVE", 10_000, 1, 10**12),
        "BANK_TRANSFER_INSTRUCTIONS": os.environ.get(
            "BANK_TRANSFER_INSTRUCTIONS", "Ask the fiscal host for its bank details."),
        # The fiscal host, configured once and named wherever a page sends people to it.
        "FISCAL_HOST_NAME": os.environ.get("FISCAL_HOST_NAME", "the fiscal host"),
        "FISCAL_HOST_EMAIL": os.environ.get("FISCAL_HOST_EMAIL") or None,
        "FISCAL_HOST_ADDRESS": os.environ.get("FISCAL_HOST_ADDRESS", ""),
        # Bank details per currency: BANK_TRANSFER_INSTRUCTIONS_EUR=...; else BANK_TRANSFER_INSTRUCTIONS.
        "BANK_TRANSFER_INSTRUCTIONS_BY_CURRENCY": {
            name.removeprefix("BANK_TRANSFER_INSTRUCTIONS_"): value for name, value in os.environ.items()
            if name.startswith("BANK_TRANSFER_INSTRUCTIONS_") and len(name) == len("BANK_TRANSFER_INSTRUCTIONS_") + 3
            and value.strip()},
        # The commons' fee on payouts, in basis points (500 = 5%), unless a project sets its own.
        "DEFAULT_FEE_RATE_BPS": _int("DEFAULT_FEE_RATE_BPS", 500, 0, 5000),
        # Claims: how many requested/approved/submitted claims one person may hold at once.
        "CLAIM_ACTIVE_LIMIT": _int("CLAIM_ACTIVE_LIMIT", 3, 1, 100),
        # Days before a claim's deadline when its implementor is warned.
        "CLAIM_WARNING_DAYS": _int("CLAIM_WARNING_DAYS", 3, 0, 60),
        # A pledge still waiting for its money after this is cancelled by the cron:
        # hours for a card (Stripe Checkout), days for a bank transfer.
        "PLEDGE_UNPAID_CARD_HOURS": _int("PLEDGE_UNPAID_CARD_HOURS", 24, 1, 24 * 30),
        "PLEDGE_UNPAID_TRANSFER_DAYS": _int("PLEDGE_UNPAID_TRANSFER_DAYS", 30, 1, 365),
        # A webhook delivery whose object is not matched yet is retried this many days, then failed for a person.
        "WEBHOOK_WAITING_DAYS": _int("WEBHOOK_WAITING_DAYS", 3, 1, 30),
        # Days between a payout's approval and its execution (funders' disputes surface meanwhile).
        "PAYOUT_DISPUTE_WINDOW_DAYS": _int("PAYOUT_DISPUTE_WINDOW_DAYS", 7, 0, 90),
        # Minutes instead of days, for a walkthrough on a laptop (`make run` sets 2); wins when set.
        "PAYOUT_DISPUTE_WINDOW_MINUTES": (_int("PAYOUT_DISPUTE_WINDOW_MINUTES", 0, 0, 90 * 24 * 60)
                                          if os.environ.get("PAYOUT_DISPUTE_WINDOW_MINUTES") else None),
        # The in-process scheduler (no Redis) runs interval jobs at least this often (seconds); unset: as scheduled.
        # Scheduled jobs this process never runs (names in jobs/cron_config.py; `make run` sets them).
        "SCHEDULE_SKIP": [],
        "SCHEDULE_INTERVAL_CAP_SECONDS": (_int("SCHEDULE_INTERVAL_CAP_SECONDS", 60, 10, 86400)
                                          if os.environ.get("SCHEDULE_INTERVAL_CAP_SECONDS") else None),
        # A directory where e-mails are written (a Maildir) instead of the log, when no MAIL_SERVER is set.
        "MAIL_OUTBOX_DIR": os.environ.get("MAIL_OUTBOX_DIR") or None,
        # "production" or "development"; unset: production when FLASK_DEBUG is off and
        # PUBLIC_URL is https (see is_production).
        "APP_ENV": (os.environ.get("APP_ENV") or "").strip().lower() or None,
        # Logging (marketplace.logconfig): text or json, a level, and Sentry when its package is installed.
        "LOG_FORMAT": os.environ.get("LOG_FORMAT") or "text",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL") or "INFO",
        "SENTRY_DSN": os.environ.get("SENTRY_DSN") or None,
        # Production without Redis only when chosen: every job then runs in the web process.
        "JOBS_IN_PROCESS": _bool("JOBS_IN_PROCESS"),
        # ISO country codes where the platform cannot pay through Stripe: the manual rail only.
        "PAYOUT_MANUAL_COUNTRIES": sorted({
            code.strip().upper() for code in os.environ.get("PAYOUT_MANUAL_COUNTRIES", "").split(",")
            if code.strip()}),
        # The country of the platform's Stripe account (cross-border recipients need the recipient agreement).
        "STRIPE_PLATFORM_COUNTRY": os.environ.get("STRIPE_PLATFORM_COUNTRY", "US").upper(),
        "STRIPE_API_KEY": os.environ.get("STRIPE_API_KEY") or None,
        # Seconds the Stripe library waits for an answer (a retry reuses the idempotency key).
        "STRIPE_TIMEOUT_SECONDS": _int("STRIPE_TIMEOUT_SECONDS", 30, 1, 300),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE") or None,
        # The API version every request names, so a library upgrade never changes
        # the shapes Stripe sends us; change it together with the payload schemas.
        "STRIPE_API_VERSION": os.environ.get("STRIPE_API_VERSION") or "2026-10-28.endive",
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        # Incremental sync asks for changes since the cursor minus this (seconds).
        "SYNC_OVERLAP_SECONDS": _int("SYNC_OVERLAP_SECONDS", 300, 0, 86400),
        # A rate-limited or failing sync is tried this many times, then given up.
        "SYNC_MAX_ATTEMPTS": _int("SYNC_MAX_ATTEMPTS", 5, 1, 100),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER") or None,
        "MAIL_PORT": _int("MAIL_PORT", 25, 1, 65535),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Backlog Commons <no-reply@localhost>"),
        "GITHUB_OAUTH_CLIENT_ID": os.environ.get("GITHUB_OAUTH_CLIENT_ID") or None,
        "GITHUB_OAUTH_CLIENT_SECRET": os.environ.get("GITHUB_OAUTH_CLIENT_SECRET") or None,
        "GITHUB_OAUTH_URL": os.environ.get("GITHUB_OAUTH_URL", "https://github.com"),
        "GITLAB_OAUTH_CLIENT_ID": os.environ.get("GITLAB_OAUTH_CLIENT_ID") or None,
        "GITLAB_OAUTH_CLIENT_SECRET": os.environ.get("GITLAB_OAUTH_CLIENT_SECRET") or None,
        "GITLAB_OAUTH_URL": os.environ.get("GITLAB_OAUTH_URL", "https://gitlab.com"),
        "RATELIMIT_AUTH": os.environ.get("RATELIMIT_AUTH", "10 per minute;100 per hour"),
        # Per e-mail address, from any client address (marketplace.accounts.backoff): this
        # many wrong passwords are free, then each attempt waits SIGNIN_BACKOFF_SECONDS after
        # the last wrong one, doubling per further wrong password up to the maximum.
        "SIGNIN_BACKOFF_FREE": int(os.environ.get("SIGNIN_BACKOFF_FREE", "5")),
        "SIGNIN_BACKOFF_SECONDS": int(os.environ.get("SIGNIN_BACKOFF_SECONDS", "30")),
        "SIGNIN_BACKOFF_MAX_SECONDS": int(os.environ.get("SIGNIN_BACKOFF_MAX_SECONDS", "900")),
        # The JSON API, per client address (Flask-Limiter syntax); 429 with Retry-After past it.
        "RATELIMIT_API": os.environ.get("RATELIMIT_API", "120 per minute;3000 per hour"),
        # Anonymous public pages (marketplace.httpcache): browsers and proxies keep them
        # HTTP_CACHE_MAX_AGE seconds, the response cache HTTP_CACHE_SECONDS (keyed by the data
        # version, so a change shows at once); HTTP_CACHE_TYPE=NullCache turns the latter off.
        "HTTP_CACHE_MAX_AGE": _int("HTTP_CACHE_MAX_AGE", 30, 0, 3600),
        "HTTP_CACHE_SECONDS": _int("HTTP_CACHE_SECONDS", 60, 1, 86400),
        "HTTP_CACHE_TYPE": os.environ.get("HTTP_CACHE_TYPE") or None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # None: secure unless FLASK_DEBUG or testing (decided in create_app).
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE") if os.environ.get("SESSION_COOKIE_SECURE") else None,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE") if os.environ.get("SESSION_COOKIE_SECURE") else None,
        # The site's own address, for links in e-mails and OAuth callbacks.
        "PUBLIC_URL": os.environ.get("PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '5000')}",
        # Number of proxies in front (X-Forwarded-For/-Proto/-Host trusted from that many hops).
        "PROXY_FIX": _int("PROXY_FIX", 0, 0, 5),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "JSON_SORT_KEYS": False,
    }
