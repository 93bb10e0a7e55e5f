"""SVG bounty badges in the common two-part style ("bounty | $120").

The width of each half is computed from its text with a table of character
advances (Verdana 11 px, the face these badges name first, as measured for
the usual badge services) plus 5 px of padding on each side; every text is
XML-escaped and stripped of characters XML 1.0 cannot hold. White text is
drawn on colours that keep a contrast of at least 4.5:1, and the SVG carries
``role="img"``, an ``aria-label`` and a ``<title>``.
"""
from __future__ import annotations

import unicodedata
from decimal import Decimal
from xml.sax.saxutils import escape

from babel.numbers import format_currency, get_currency_precision

from marketplace.presence.queries import BountyState

# Advance of each printable ASCII character in Verdana at 11 px.
_WIDTHS = dict(zip(
    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
    (3.87, 4.33, 5.05, 9.0, 7.0, 11.84, 7.99, 2.95, 4.99, 4.99, 7.0, 9.0, 4.0, 4.99, 4.0, 4.99,
     7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 4.99, 4.99, 9.0, 9.0, 9.0, 6.0, 11.0,
     7.52, 7.54, 7.68, 8.48, 6.96, 6.32, 8.53, 8.27, 4.63, 5.0, 7.62, 6.12, 9.27, 8.23, 8.66, 6.63,
     8.66, 7.65, 7.52, 6.78, 8.05, 7.52, 10.88, 7.54, 6.77, 7.54, 4.99, 4.99, 4.99, 9.0, 7.0, 7.0,
     6.61, 6.85, 5.73, 6.85, 6.55, 3.87, 6.85, 6.96, 3.02, 3.79, 6.51, 3.02, 10.75, 6.96, 6.68, 6.85,
     6.85, 4.69, 5.73, 4.33, 6.96, 6.51, 9.0, 6.51, 6.51, 5.77, 6.98, 4.99, 6.98, 9.0), strict=True))
_OTHER = 7.5  # any other character (accented letters, currency signs)
_WIDE = 11.0  # East Asian wide and full-width characters
PADDING = 5  # px on each side of a text
LABEL_COLOUR = "#555"
# White text on each keeps a contrast ratio of at least 4.5:1 (WCAG AA).
COLOURS = {"open": "#2c7a3f", "claimed": "#9a5b00", "solved": "#1f5fbf", "paid": "#6f42c1", "closed": "#5f6368",
           "none": "#5f6368"}
MAX_TEXT = 60  # characters kept of one half


# Bidirectional controls (embeddings, overrides, isolates, marks): in a ``?label=`` they
# could show a badge's text reversed or reordered in its title and spoken label.
_BIDI = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(text: str) -> str:
    """``text`` without what XML 1.0 cannot hold (controls, lone surrogates) and
    without bidirectional controls, cut to :data:`MAX_TEXT`."""
    kept = "".join(ch for ch in text if ((ch >= " " and ch not in "\ufffe\uffff" and ch != "\x7f"
                                          and not 0xD800 <= ord(ch) <= 0xDFFF) or ch == "\t")
                   and ch not in _BIDI)
    return kept[:MAX_TEXT]


def text_width(text: str) -> float:
    """The width in px of ``text`` at 11 px Verdana, from the advance table."""
    total = 0.0
    for ch in text:
        if ch in _WIDTHS:
            total += _WIDTHS[ch]
        elif unicodedata.combining(ch):
            continue
        else:
            total += _WIDE if unicodedata.east_asian_width(ch) in ("W", "F") else _OTHER
    return total


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def render_badge(label: str, message: str, colour: str) -> str:
    """The SVG (text) of a two-part badge: ``label`` on grey, ``message`` on ``colour``."""
    label, message = clean(label), clean(message)
    left = round(text_width(label) + 2 * PADDING, 1)
    right = round(text_width(message) + 2 * PADDING, 1)
    width = round(left + right, 1)
    lx, mx = round(left / 2, 1), round(left + right / 2, 1)
    spoken = _attr(f"{label}: {message}")
    label_text, message_text = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{spoken}">'
        f"<title>{escape(label)}: {escape(message)}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{_attr(colour)}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text aria-hidden="true" x="{lx}" y="15" fill="#010101" fill-opacity=".3">{label_text}</text>'
        f'<text x="{lx}" y="14">{label_text}</text>'
        f'<text aria-hidden="true" x="{mx}" y="15" fill="#010101" fill-opacity=".3">{message_text}</text>'
        f'<text x="{mx}" y="14">{message_text}</text></g></svg>'
    )


def short_money(amount_minor: int, currency: str) -> str:
    """An amount for a badge, in English: ``$120`` for whole amounts, ``$120.50`` otherwise."""
    digits = get_currency_precision(currency)
    value = Decimal(amount_minor).scaleb(-digits)
    if amount_minor % (10 ** digits) == 0:
        return format_currency(value, currency, format="¤#,##0", locale="en", currency_digits=False)
    return format_currency(value, currency, locale="en")


def money_list(pairs: list[tuple[str, int]]) -> str:
    """``[("USD", 12000), ("EUR", 500)]`` as ``$120 + €5``."""
    return " + ".join(short_money(minor, currency) for currency, minor in pairs)


def item_message(state: BountyState) -> str:
    """The right half of an item's badge: the amount and the state (``$120``,
    ``$120 · claimed``, ``$120 · solved``, ``$120 · paid``, ``closed``)."""
    amount = money_list(state.held or state.paid)
    if state.state == "closed":
        return "closed without the work"
    if state.state == "open":
        return amount or "open, no bounty yet"
    return f"{amount} · {state.state}" if amount else state.state


def item_badge(state: BountyState, label: str = "bounty") -> str:
    """The SVG of an item's badge for ``state``."""
    return render_badge(label, item_message(state), COLOURS[state.state])


def project_badge(totals: list[tuple[str, int]], label: str = "open bounties") -> str:
    """The SVG of a project's badge: the money held on its open items (``none`` without any)."""
    return render_badge(label, money_list(totals) or "none", COLOURS["open"] if totals else COLOURS["none"])
