"""Locale selection and locale-aware formatting of money, numbers and dates.

The language of a page is, in order: ``?lang=`` (links), the ``lang`` cookie
(the footer's choice, remembered for a year), the signed-in account's
preferred language, then the best match of ``Accept-Language``; English when
nothing matches. The JSON API (``/api/``) follows only ``?lang=`` and
``Accept-Language``: its field names stay English, its error messages are
translated. Jobs and CLI commands render in the locale they are given
(:func:`flask_babel.force_locale`), English otherwise.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from babel import Locale
from babel.core import get_global
from babel.numbers import get_currency_precision
from flask import Flask, Response, current_app, g, has_request_context, request
from flask_babel import format_currency, format_date, format_datetime, format_decimal, get_locale, get_translations
from flask_login import current_user

from marketplace.extensions import babel
from marketplace.validation import http_url

LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def supported_locales() -> list[str]:
    """The locale codes offered (``SUPPORTED_LOCALES``), English first by default."""
    return list(current_app.config["SUPPORTED_LOCALES"])


def supported(code: str | None) -> str | None:
    """``code`` when it is an offered locale (``"fr"``, ``"pt"``), else None."""
    return code if code and code in current_app.config["SUPPORTED_LOCALES"] else None


@cache
def language_name(code: str) -> str:
    """The language's own name for itself: ``"français"``, ``"español"``, ``"português"``."""
    return Locale.parse(code).get_display_name(code) or code


def select_locale() -> str:
    """The locale of the current request (see the module docstring for the order)."""
    locales = supported_locales()
    if not has_request_context():
        return locales[0]  # jobs and CLI commands without force_locale
    asked = supported(request.args.get("lang"))
    if asked:
        return asked
    if not request.path.startswith("/api/"):
        remembered = supported(request.cookies.get(LANGUAGE_COOKIE))
        if remembered:
            return remembered
        preferred = getattr(current_user, "preferred_language", None) if current_user else None
        if supported(preferred):
            return preferred
    return request.accept_languages.best_match(locales) or locales[0]


def remember_language(response: Response, code: str) -> Response:
    """Set the ``lang`` cookie to ``code`` (an offered locale) on ``response``."""
    response.set_cookie(LANGUAGE_COOKIE, code, max_age=LANGUAGE_COOKIE_SECONDS, samesite="Lax",
                        secure=request.is_secure, httponly=True)
    return response


def current_language() -> str:
    """The language code of the current request or forced locale: ``"fr"``, ``"en"``…"""
    return str(get_locale() or "en")


# The commonest short words of each offered language: enough to tell which of
# them a paragraph of an issue is written in (forges do not say).
_STOPWORDS = {
    "en": set("the and of to in is that it for with this on are be as not should when we can from".split()),
    "fr": set("le la les et des du un une est que pour dans pas sur avec ce qui au sont être lors".split()),
    "es": set("el la los las y de que en un una es por con para del no se al lo como está".split()),
    "pt": set("o a os as e de que em um uma é para com não do da dos das no na ao está".split()),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def text_language(text: str | None) -> str | None:
    """The offered language ``text`` (an issue's title and body, as written on
    the forge) is most likely in, by counting each language's commonest short
    words; None when the text is too short or no language clearly leads (at
    least 5 such words and twice the runner-up), so no ``lang`` is claimed."""
    words = _WORD.findall((text or "").lower())[:2000]
    counts = sorted(((sum(w in stop for w in words), code) for code, stop in _STOPWORDS.items()
                     if code in current_app.config["SUPPORTED_LOCALES"]), reverse=True)
    if not counts or counts[0][0] < 5 or (len(counts) > 1 and counts[0][0] < 2 * counts[1][0]):
        return None
    return counts[0][1]


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

    ``format_money(123456, "USD")`` gives ``$1,234.56`` in English, ``1 234,56 $US``
    in French and ``US$ 1.234,56`` in Portuguese; ``format_money(123450, "BRL")``
    gives ``R$ 1.234,50`` in Portuguese (CLDR's ``pt`` is Brazil's usage). JPY
    has no minor unit, so ``format_money(1234, "JPY")`` gives ``¥1,234``.
    """
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise TypeError("amounts are integers in minor units")
    exponent = currency_exponent(currency)
    return format_currency(Decimal(amount_minor).scaleb(-exponent), currency.upper())


def page_translations():
    """The translations of the current locale, as Flask-Babel's ``get_translations()``
    gives them, remembered on Flask-Babel's request namespace while its locale
    and domain stay the same objects: a page translates a hundred strings, and
    each ``get_translations()`` walks the context three times and names the
    locale again. ``force_locale`` and ``refresh`` set or drop the locale
    object, so an e-mail rendered inside a request is still in its own
    language. Outside an app context, Flask-Babel's answer (no translation)."""
    babel_ctx = g.get("_flask_babel") if g else None
    if babel_ctx is None:
        return get_translations()
    locale = getattr(babel_ctx, "babel_locale", None)
    domain = getattr(babel_ctx, "babel_domain", None)
    remembered = getattr(babel_ctx, "page_translations", None)
    if locale is not None and remembered is not None and remembered[0] is locale and remembered[1] is domain:
        return remembered[2]
    translations = get_translations()
    # get_translations() chose the locale when none was chosen yet: remember under it.
    babel_ctx.page_translations = (getattr(babel_ctx, "babel_locale", None), domain, translations)
    return translations


def missing_catalogues(app: Flask) -> list[str]:
    """The offered locales other than English with no compiled catalogue
    (``marketplace/translations/<xx>/LC_MESSAGES/messages.mo``)."""
    root = Path(app.root_path) / "translations"
    return [code for code in app.config["SUPPORTED_LOCALES"]
            if code != "en" and not (root / code / "LC_MESSAGES" / "messages.mo").exists()]


def init_i18n(app: Flask) -> None:
    """Initialise Flask-Babel, register the Jinja filters ``money``, ``number``,
    ``date``, ``datetime``, and remember a ``?lang=`` choice in the cookie."""
    babel.init_app(app, locale_selector=select_locale)
    # Flask-Babel's own callables, with the translations remembered per page (page_translations).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: page_translations().ugettext(s),
        ngettext=lambda s, p, n: page_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: page_translations().unpgettext(c, s, p, n),
    )
    uncompiled = missing_catalogues(app)
    if uncompiled:
        app.logger.warning("no compiled catalogue for %s: those pages are served in English; "
                           "run `make translations` (or python marketplace/catalogues.py compile)",
                           ", ".join(uncompiled))
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["http_url"] = http_url
    app.jinja_env.filters["number"] = format_decimal
    app.jinja_env.filters["text_language"] = text_language
    app.jinja_env.filters["date"] = lambda value, fmt="medium": (
        format_date(value, fmt) if isinstance(value, date) else ""  # a datetime is a date too
    )
    # Date and time (UTC, shown as UTC) where minutes matter, e.g. when a payout runs.
    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": (
        format_datetime(value, fmt) + " UTC" if isinstance(value, datetime) else "")

    @app.before_request
    def note_acting_language() -> None:
        # The language of the page where a signed-in person acts: their e-mails
        # are written in it while they have chosen none. Saved by the view's commit.
        if request.method == "POST" and not request.path.startswith(("/api/", "/webhooks/")) \
                and current_user.is_authenticated:
            code = current_language()
            if current_user.last_language != code:
                current_user.last_language = code

    @app.after_request
    def keep_link_language(response: Response) -> Response:
        # The same address answers in several languages: caches must tell them apart.
        response.vary.add("Accept-Language")
        if not request.path.startswith("/api/"):
            response.vary.add("Cookie")
        # A link with ?lang= is a choice too: later pages keep it.
        asked = supported(request.args.get("lang"))
        if asked and not request.path.startswith("/api/") and request.cookies.get(LANGUAGE_COOKIE) != asked:
            remember_language(response, asked)
            # An answer that sets a cookie is this visitor's own, never a shared copy.
            response.headers["Cache-Control"] = "private, no-cache"
        return response

    @app.context_processor
    def locale_context():
        code = current_language()
        here = None
        links = {}
        if has_request_context():
            args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
            here = request.path + ("?" + urlencode(args) if args else "")
            # Plain links for visitors (url_for's arguments: this page, its non-empty
            # query, the language): a page without a form's CSRF token stays
            # shareable by the response cache (marketplace.httpcache).
            kept = {k: v for k, v in args if v != ""}
            links = {c: {**(request.view_args or {}), **kept, "lang": c} for c in supported_locales()}
        return {"current_locale": code.replace("_", "-"), "page_without_lang": here,
                "language_args": links,
                "languages": [(c, language_name(c)) for c in supported_locales()]}
