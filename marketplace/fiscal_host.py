"""The fiscal host (the open source center that holds the money), configured once
(``FISCAL_HOST_NAME``, ``FISCAL_HOST_EMAIL``, ``FISCAL_HOST_ADDRESS``,
``BANK_TRANSFER_INSTRUCTIONS`` and ``BANK_TRANSFER_INSTRUCTIONS_<ISO 4217>``) and
named wherever a page or message sends people to it. An admin's settings
(``/admin/fiscal-host``, table ``fiscal_host_setting``) override the
environment field by field; an empty field falls back to it."""
from __future__ import annotations

from flask import current_app, has_app_context
from sqlalchemy.exc import SQLAlchemyError

from marketplace.extensions import db
from marketplace.roles.models import FiscalHostSetting


def _setting():
    """The admin's saved settings, or None (a primary-key read: the session's
    identity map answers it without SQL once loaded)."""
    if not has_app_context():
        return None
    try:
        with db.session.no_autoflush:
            return db.session.get(FiscalHostSetting, 1)
    except SQLAlchemyError:  # a database without the table yet (before its migration)
        return None


def forget() -> None:
    """Kept for callers that saved new settings: nothing is cached beyond the session."""


def fiscal_host() -> dict:
    """``{"name", "email", "address"}`` of the fiscal host; ``email`` None and
    ``address`` "" when not configured."""
    config = current_app.config
    row = _setting()
    return {"name": (row.legal_name if row else None) or config.get("FISCAL_HOST_NAME") or "the fiscal host",
            "email": (row.email if row else None) or config.get("FISCAL_HOST_EMAIL") or None,
            "address": (row.address if row else None) or config.get("FISCAL_HOST_ADDRESS") or ""}


def contact() -> str:
    """The fiscal host as a person reads it in a sentence: "Name (e-mail)", or the name alone."""
    host = fiscal_host()
    return f"{host['name']} ({host['email']})" if host["email"] else host["name"]


def bank_instructions(currency: str) -> str:
    """The bank details to pay ``currency`` to: the admin's for that currency when
    saved, else ``BANK_TRANSFER_INSTRUCTIONS_<currency>`` when set, else
    ``BANK_TRANSFER_INSTRUCTIONS``."""
    config = current_app.config
    row = _setting()
    saved = ((row.bank_instructions or {}) if row else {}).get(currency.upper())
    return saved or (config.get("BANK_TRANSFER_INSTRUCTIONS_BY_CURRENCY") or {}).get(currency.upper()) \
        or config["BANK_TRANSFER_INSTRUCTIONS"]
