"""The fiscal host (the open source center that holds the money), configured once
(``FISCAL_HOST_NAME``, ``FISCAL_HOST_EMAIL``, ``FISCAL_HOST_ADDRESS``,
``BANK_TRANSFER_INSTRUCTIONS`` and ``BANK_TRANSFER_INSTRUCTIONS_<ISO 4217>``) and
named wherever a page or message sends people to it."""
from __future__ import annotations

from flask import current_app


def fiscal_host() -> dict:
    """``{"name", "email", "address"}`` of the fiscal host; ``email`` None and
    ``address`` "" when not configured."""
    config = current_app.config
    return {"name": config.get("FISCAL_HOST_NAME") or "the fiscal host",
            "email": config.get("FISCAL_HOST_EMAIL") or None,
            "address": config.get("FISCAL_HOST_ADDRESS") or ""}


def contact() -> str:
    """The fiscal host as a person reads it in a sentence: "Name (e-mail)", or the name alone."""
    host = fiscal_host()
    return f"{host['name']} ({host['email']})" if host["email"] else host["name"]


def bank_instructions(currency: str) -> str:
    """The bank details to pay ``currency`` to: ``BANK_TRANSFER_INSTRUCTIONS_<currency>``
    when set, else ``BANK_TRANSFER_INSTRUCTIONS``."""
    config = current_app.config
    return (config.get("BANK_TRANSFER_INSTRUCTIONS_BY_CURRENCY") or {}).get(currency.upper()) \
        or config["BANK_TRANSFER_INSTRUCTIONS"]
