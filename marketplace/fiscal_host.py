"""The fiscal host (the open source center that holds the money), configured once
(``FISCAL_HOST_NAME``, ``FISCAL_HOST_EMAIL``, ``FISCAL_HOST_ADDRESS``,
``BANK_TRANSFER_INSTRUCTIONS`` and ``BANK_TRANSFER_INSTRUCTIONS_<ISO 4217>``) and
named wherever a page or message sends people to it. An admin's settings
(``/admin/fiscal-host``, table ``fiscal_host_setting``) override the
environment field by field; an empty field falls back to it."""
from __future__ import annotations

import time

from flask import current_app, has_app_context
from sqlalchemy.exc import SQLAlchemyError

from marketplace.extensions import db
from marketplace.roles.models import FiscalHostSetting

CACHE_SECONDS = 30  # default of FISCAL_HOST_CACHE_SECONDS: how long a process keeps the admin's settings


def _setting() -> dict | None:
    """The admin's saved settings as ``{"legal_name", "email", "address",
    "bank_instructions"}``, or None. Every page names the fiscal host, so a
    process keeps them for :data:`CACHE_SECONDS` (a save in this process
    forgets them at once, :func:`forget`; other processes see it within that
    time) rather than adding a query to each page."""
    if not has_app_context():
        return None
    cached = current_app.extensions.get("fiscal_host_setting")
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        with db.session.no_autoflush:
            row = db.session.get(FiscalHostSetting, 1)
    except SQLAlchemyError:  # a database without the table yet (before its migration)
        return None
    values = None if row is None else {"legal_name": row.legal_name, "email": row.email, "address": row.address,
                                       "bank_instructions": dict(row.bank_instructions or {})}
    ttl = current_app.config.get("FISCAL_HOST_CACHE_SECONDS", CACHE_SECONDS)
    current_app.extensions["fiscal_host_setting"] = (now + ttl, values)
    return values


def forget() -> None:
    """Drop this process's copy of the settings (after an admin saved new ones)."""
    current_app.extensions.pop("fiscal_host_setting", None)


def fiscal_host() -> dict:
    """``{"name", "email", "address"}`` of the fiscal host; ``email`` None and
    ``address`` "" when not configured."""
    config = current_app.config
    row = _setting() or {}
    return {"name": row.get("legal_name") or config.get("FISCAL_HOST_NAME") or "the fiscal host",
            "email": row.get("email") or config.get("FISCAL_HOST_EMAIL") or None,
            "address": row.get("address") or config.get("FISCAL_HOST_ADDRESS") or ""}


def contact() -> str:
    """The fiscal host as a person reads it in a sentence: "Name (e-mail)", or the name alone."""
    host = fiscal_host()
    return f"{host['name']} ({host['email']})" if host["email"] else host["name"]


def bank_instructions(currency: str) -> str:
    """The bank details to pay ``currency`` to: the admin's for that currency when
    saved, else ``BANK_TRANSFER_INSTRUCTIONS_<currency>`` when set, else
    ``BANK_TRANSFER_INSTRUCTIONS``."""
    config = current_app.config
    saved = (_setting() or {}).get("bank_instructions", {}).get(currency.upper())
    return saved or (config.get("BANK_TRANSFER_INSTRUCTIONS_BY_CURRENCY") or {}).get(currency.upper()) \
        or config["BANK_TRANSFER_INSTRUCTIONS"]
