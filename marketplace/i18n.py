"""Locale selection and locale-aware formatting of money, numbers and dates."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache

from babel.core import get_global
from babel.numbers import get_currency_precision
from flask import Flask, current_app, has_request_context, request
from flask_babel import format_currency, format_date, format_datetime, format_decimal, get_locale

from marketplace.extensions import babel
from marketplace.validation import http_url


def select_locale() -> str:
    """Pick the best supported locale from ``?lang=`` or the Accept-Language header."""
    supported = current_app.config["SUPPORTED_LOCALES"]
    if not has_request_context():
        return supported[0]  # jobs and CLI commands
    asked = request.args.get("lang")
    if asked in supported:
        return asked
    return request.accept_languages.best_match(supported) or supported[0]


def _user_assigned(code: str) -> bool:
    # ISO 3166-1 leaves AA, QM-QZ, XA-XZ and ZZ to users (CLDR's pseudo-locales
    # XA/XB, Kosovo's XK, "Unknown Region" ZZ); EU is only "exceptionally reserved".
    return code in ("AA", "ZZ", "EU") or code[0] == "X" or (code[0] == "Q" and code[1] >= "M")


@cache
def country_codes() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes of real countries and territories (249).

    CLDR names more "territories" than ISO 3166-1 lists (Eurozone, United
    Nations, Outlying Oceania, Ascension Island, the pseudo-locales); the codes
    kept are those CLDR maps from an ISO 3166-1 numeric code, less the codes
    ISO 3166-1 reserves or leaves to users."""
    aliases = get_global("territory_aliases")
    return frozenset(
        targets[0] for alias, targets in aliases.items()
        if alias.isdigit() and len(targets) == 1 and len(targets[0]) == 2 and targets[0].isalpha()
        and not _user_assigned(targets[0]))


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency``'s minor unit (ISO 4217 via CLDR)."""
    return get_currency_precision(currency.upper())


def format_money(amount_minor: int, currency: str) -> str:
    """Format an integer amount in minor units of ``currency`` for the current locale.

    ``format_money(123456, "USD")`` gives ``$1,234.56`` in English; JPY has no
    minor unit, so ``format_money(1234, "JPY")`` gives ``¥1,234``.
    """
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise TypeError("amounts are integers in minor units")
    exponent = currency_exponent(currency)
    return format_currency(Decimal(amount_minor).scaleb(-exponent), currency.upper())


def init_i18n(app: Flask) -> None:
    """Initialise Flask-Babel and register the Jinja filters ``money``, ``number``, ``date``."""
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["http_url"] = http_url
    app.jinja_env.filters["number"] = format_decimal
    app.jinja_env.filters["date"] = lambda value, fmt="medium": (
        format_date(value, fmt) if isinstance(value, date) else ""  # a datetime is a date too
    )
    # Date and time (UTC, shown as UTC) where minutes matter, e.g. when a payout runs.
    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": (
        format_datetime(value, fmt) + " UTC" if isinstance(value, datetime) else "")

    @app.context_processor
    def locale_context():
        return {"current_locale": str(get_locale())}
