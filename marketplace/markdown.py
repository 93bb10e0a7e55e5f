"""Markdown rendering for forge text, sanitised after rendering.

Issue bodies are written by anyone on a forge. They are rendered with
markdown-it-py (CommonMark, raw HTML passed through as the forges allow it)
and then cleaned with bleach: the sanitiser sees the final HTML, so nothing the
renderer produces can bypass it.
"""
from __future__ import annotations

import re
from functools import partial
from urllib.parse import urlsplit

import bleach
from bleach.linkifier import LinkifyFilter, build_url_re
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "dd", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
    "pre", "s", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})


def _absolute_url(value: str, schemes: frozenset[str]) -> bool:
    # Relative URLs would point into this site; forge text has no business there.
    scheme = urlsplit(value.strip()).scheme.lower()
    return scheme in schemes


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if tag == "a":
        return name == "title" or name == "rel" or (
            name == "href" and _absolute_url(value, ALLOWED_PROTOCOLS)
        )
    if tag == "img":
        return name in ("alt", "title") or (
            name == "src" and _absolute_url(value, frozenset({"http", "https"}))
        )
    if tag in ("td", "th"):
        return name == "align"
    if tag == "ol":
        return name == "start"
    return False

_md = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table").enable("strikethrough")


def _nofollow(attrs, new=False):
    if (None, "href") in attrs:
        attrs[(None, "rel")] = "nofollow ugc noopener"
    return attrs


# Bare URLs become links inside the cleaner, so they pass the same checks;
# only http and https are ever linkified.
_cleaner = bleach.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allow_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[
        partial(
            LinkifyFilter,
            callbacks=[_nofollow],
            skip_tags={"pre", "code"},
            parse_email=False,
            url_re=build_url_re(protocols=["http", "https"]),
        )
    ],
)


# An <a> whose href the cleaner removed would look like a link but go nowhere.
_DEAD_LINK = re.compile(r"<a(?: title=\"[^\"]*\")?>(.*?)</a>", re.S)


def render_markdown(text: str | None, heading_offset: int = 2) -> Markup:
    """Render Markdown ``text`` to sanitised HTML safe to put in a page.

    Only the tags in ``ALLOWED_TAGS`` survive; links and images keep only
    http, https and mailto URLs; every ``on*`` attribute, ``style`` and
    ``<script>`` is removed; links left without a URL become plain text.
    Links get ``rel="nofollow ugc noopener"``. Headings move so that the
    text's top level sits just under the page's own (``heading_offset`` 2:
    the text's highest heading, ``#`` or ``###`` alike, becomes ``<h3>``),
    keeping the outline without skipped levels.
    """
    if not text:
        return Markup("")
    html = _md.render(text)
    levels = [int(level) for _, level in _HTML_HEADING.findall(html)]
    if levels:
        offset = heading_offset + 1 - min(levels)
        html = _HTML_HEADING.sub(lambda m: _shift_heading(m, offset), html)
    cleaned = _cleaner.clean(html)
    return Markup(_DEAD_LINK.sub(r"\1", cleaned))


# Markdown headings and raw HTML headings alike.
_HTML_HEADING = re.compile(r"<(/?)h([1-6])\b", re.I)


def _shift_heading(match: re.Match, offset: int) -> str:
    return f"<{match.group(1)}h{max(1, min(6, int(match.group(2)) + offset))}"


def excerpt(text: str | None, length: int = 180) -> str:
    """Plain-text start of ``text`` (Markdown markup left as typed), at most ``length`` characters."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"
