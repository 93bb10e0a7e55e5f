"""Markdown rendering for forge text, as the forge renders it, sanitised after rendering.

Issue bodies are written by anyone on a forge. They are rendered with
markdown-it-py (CommonMark, tables, strikethrough, raw HTML passed through as
the forges allow it) the way GitHub shows them (issue 14):

- bare URLs become links only where GitHub makes them: ``http://``,
  ``https://`` and ``www.`` (``setup.py`` or ``README.md`` are file names, not
  links to the countries that own ``.py`` and ``.md``);
- task lists (``- [ ]``, ``- [x]``) are disabled checkboxes (mdit-py-plugins);
- emoji shortcodes (``:bee:``) become the emoji (the ``emoji`` package's
  GitHub aliases);
- ``#123``, ``owner/repo#123`` and ``@user`` link to the forge, or to the item
  here when it is in the backlog, given the text's :class:`ForgeLinks`.

The result is cleaned with bleach: the sanitiser sees the final HTML, so
nothing the renderer produces can bypass it. Every link gets
``rel="nofollow ugc noopener"``.
"""
from __future__ import annotations

import hashlib
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from urllib.parse import urlsplit

import bleach
import emoji
from bleach.html5lib_shim import Filter, getTreeWalker
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.tasklists import tasklists_plugin

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "dd", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "input", "kbd", "label", "li", "ol", "p",
    "pre", "s", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
# What GitHub autolinks in text (its "extended autolinks"); e-mail addresses aside.
AUTOLINK_PREFIXES = ("http://", "https://", "www.")
REL = "nofollow ugc noopener"


@dataclass(frozen=True)
class ForgeLinks:
    """Where references in one repository's text point.

    ``web_url`` is the forge's web root (``https://github.com``), ``owner`` and
    ``name`` the text's repository, ``kind`` ``github`` or ``gitlab``.
    ``local_item`` answers the URL of an item here for (owner, name, number),
    or None when that issue is not in the backlog. Issue URLs follow GitHub
    (``/owner/name/issues/N``, which also leads to a pull request N) and
    GitLab (``/owner/name/-/issues/N``); a user is ``/login`` on both.
    """

    web_url: str
    owner: str
    name: str
    kind: str = "github"
    local_item: Callable[[str, str, int], str | None] | None = None

    def issue_url(self, owner: str | None, name: str | None, number: int, *, local: bool = True) -> str:
        """The URL of issue ``number`` of ``owner/name`` (this repository's when
        None): the item here when ``local`` and ``local_item`` knows it, else the forge's."""
        owner, name = owner or self.owner, name or self.name
        if local and self.local_item is not None:
            local = self.local_item(owner, name, number)
            if local is not None:
                return local
        issues = "-/issues" if self.kind == "gitlab" else "issues"
        return f"{self.web_url.rstrip('/')}/{owner}/{name}/{issues}/{number}"

    def user_url(self, login: str) -> str:
        return f"{self.web_url.rstrip('/')}/{login}"


def _absolute_url(value: str, schemes: frozenset[str]) -> bool:
    # Relative URLs would point into this site; forge text has no business there.
    scheme = urlsplit(value.strip()).scheme.lower()
    return scheme in schemes


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if tag == "input":  # task-list checkboxes; _Checkboxes makes every one disabled
        return (name == "type" and value == "checkbox") or name == "checked"
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

# GitHub's user names: letters, digits, single hyphens inside, at most 39.
# Repository names: letters, digits, ".", "_", "-", but never "." or ".."
# (which would make "owner/..#1" a link to another path of the forge).
_REFERENCE = re.compile(
    r"(?<![\w/.#@&-])(?:(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)/"
    r"(?P<name>(?!\.\.?#)[A-Za-z0-9._-]{1,100}))?"
    r"#(?P<number>[0-9]{1,9})(?![\w#])"
    r"|(?<![\w/.@`-])@(?P<login>[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})(?![\w/-])"
)


def _github_autolinks(state: StateCore) -> None:
    # linkify-it also links "setup.py" (as http://setup.py) and "mailto:…":
    # unwrap every link it made whose text, as typed, does not start as
    # GitHub's autolinks do.
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children, kept, unwrapping = block.children, [], False
        for index, token in enumerate(children):
            if token.type == "link_open" and token.markup == "linkify":
                typed = children[index + 1].content if index + 1 < len(children) else ""
                unwrapping = not typed.lower().startswith(AUTOLINK_PREFIXES)
                if unwrapping:
                    continue
            elif token.type == "link_close" and token.markup == "linkify" and unwrapping:
                unwrapping = False
                continue
            kept.append(token)
        block.children = kept


# Opening and closing raw HTML tags that Markdown links and code stand for.
_RAW_TAG = re.compile(r"<(/?)(a|code|pre|kbd|samp)(?=[\s/>])", re.I)


def _emoji_and_references(state: StateCore) -> None:
    links: ForgeLinks | None = state.env.get("forge_links")
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        out: list[Token] = []
        in_link = in_code = 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link = max(0, in_link - 1)
            elif token.type == "html_inline":
                # Raw HTML links and code count as the Markdown ones do: no
                # link inside a link (the outer one would be cut empty), no
                # reference or emoji inside code.
                for closing, tag in _RAW_TAG.findall(token.content):
                    step = -1 if closing else 1
                    if tag.lower() == "a":
                        in_link = max(0, in_link + step)
                    else:
                        in_code = max(0, in_code + step)
            if token.type != "text" or in_code:
                out.append(token)
                continue
            token.content = emoji.emojize(token.content, language="alias")
            if links is None or in_link:
                out.append(token)
            else:
                out.extend(_linked_references(token, links, state.env.setdefault("issue_urls", {})))
        block.children = out


# At most this many distinct issue references of one text are looked up in
# the backlog (``ForgeLinks.local_item``, a query each); the rest link to the
# forge. A 64 kB body of "#1 #2 #3 …" would otherwise cost 10,000 queries.
MAX_LOCAL_LOOKUPS = 100


def _linked_references(token: Token, links: ForgeLinks, issue_urls: dict) -> list[Token]:
    text, pieces, last = token.content, [], 0
    for match in _REFERENCE.finditer(text):
        if match.group("login"):
            href = links.user_url(match.group("login"))
        else:
            key = (match.group("owner"), match.group("name"), int(match.group("number")))
            href = issue_urls.get(key)
            if href is None:
                href = issue_urls[key] = links.issue_url(*key, local=len(issue_urls) < MAX_LOCAL_LOOKUPS)
        if match.start() > last:
            pieces.append(_text(text[last:match.start()]))
        link_open = Token("link_open", "a", 1, attrs={"href": href}, markup="reference")
        pieces += [link_open, _text(match.group(0)), Token("link_close", "a", -1, markup="reference")]
        last = match.end()
    if not pieces:
        return [token]
    if last < len(text):
        pieces.append(_text(text[last:]))
    return pieces


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


_md = (
    MarkdownIt("commonmark", {"html": True, "linkify": True})
    .enable(["table", "strikethrough", "linkify"])
    # Disabled checkboxes, as on GitHub for readers; each wrapped with its text in a
    # <label> (no ids), so a screen reader names it (axe-core: "label").
    .use(tasklists_plugin, label=True)
)
_md.linkify.set({"fuzzy_email": False})
_md.core.ruler.after("linkify", "github_autolinks", _github_autolinks)
_md.core.ruler.push("emoji_and_references", _emoji_and_references)


class _NoFollow(Filter):
    """Every link: ``rel="nofollow ugc noopener"``, whatever the text said."""

    def __iter__(self):
        for token in super().__iter__():
            if token["type"] == "StartTag" and token["name"] == "a":
                attrs = dict(token.get("data") or {})
                if (None, "href") in attrs:
                    attrs[(None, "rel")] = REL
                else:
                    attrs.pop((None, "rel"), None)
                token["data"] = attrs
            yield token


class _Checkboxes(Filter):
    """Inputs survive only as disabled checkboxes (task lists); others go."""

    def __iter__(self):
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token["name"] == "input":
                attrs = dict(token.get("data") or {})
                if attrs.get((None, "type")) != "checkbox":
                    continue
                attrs[(None, "disabled")] = "disabled"
                token["data"] = attrs
            yield token


_EtreeWalker = getTreeWalker("etree")


class _LinearWalker(_EtreeWalker):
    """html5lib's etree walker without its quadratic step.

    Leaving an element, the stock walker finds the element's place among its
    parent's children with ``list.count`` and ``list.index``: a table of
    16,000 rows (64 kB, GitHub's limit for an issue body) took 12 s to
    sanitise. Positions are looked up once per parent instead.
    """

    def __init__(self, tree):
        super().__init__(tree)
        self._positions: dict[int, dict[int, int]] = {}

    def getParentNode(self, node):
        if not isinstance(node, tuple) or node[3] == "text" or len(node[2]) < 2:
            return super().getParentNode(node)
        parents = node[2]
        parent = parents.pop()
        grandparent = parents[-1]
        positions = self._positions.get(id(grandparent))
        if positions is None:
            positions = {id(child): index for index, child in enumerate(grandparent)}
            self._positions[id(grandparent)] = positions
        return parent, positions[id(parent)], parents, None


_cleaner = bleach.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allow_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[_NoFollow, _Checkboxes],
)
_cleaner.walker = _LinearWalker


# An <a> whose href the cleaner removed would look like a link but go nowhere.
_DEAD_LINK = re.compile(r"<a(?: title=\"[^\"]*\")?>(.*?)</a>", re.S)


def render_markdown(text: str | None, heading_offset: int = 2, *, links: ForgeLinks | None = None) -> Markup:
    """Render Markdown ``text`` to sanitised HTML safe to put in a page, as the forge shows it.

    ``links`` is the text's repository, for ``#123``, ``owner/repo#123`` and
    ``@user`` references (left as text without it).

    Only the tags in ``ALLOWED_TAGS`` survive; links and images keep only
    http, https and mailto URLs; every ``on*`` attribute, ``style`` and
    ``<script>`` is removed; links left without a URL become plain text.
    Links get ``rel="nofollow ugc noopener"``; inputs survive only as
    disabled checkboxes. Headings move so that the
    text's top level sits just under the page's own (``heading_offset`` 2:
    the text's highest heading, ``#`` or ``###`` alike, becomes ``<h3>``),
    keeping the outline without skipped levels.
    """
    if not text:
        return Markup("")
    html = _md.render(text, {"forge_links": links})
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


def emojize(text: str | None) -> str:
    """``text`` with GitHub emoji shortcodes (``:bee:``) replaced by the emoji (plain text, unescaped)."""
    return emoji.emojize(text or "", language="alias")


class RenderCache:
    """A bounded, thread-safe least-recently-used cache of rendered HTML.

    Holds at most ``max_entries`` renderings and ``max_bytes`` bytes of HTML
    strings in all, measured as Python holds them (``sys.getsizeof``: 1, 2 or
    4 bytes a character, as the widest character needs, so a body of emoji
    weighs four times one of ASCII); the least recently used go first. An
    entry is used only for the same ``key`` and the same source text (its
    BLAKE2 digest is kept beside it), so a text changed without a new key is
    rendered again.
    """

    def __init__(self, max_entries: int = 1_000, max_bytes: int = 8_000_000):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[Hashable, tuple[bytes, Markup, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of HTML held now (``sys.getsizeof`` of each string)."""
        return self._bytes

    def get_or_render(self, key: Hashable, text: str | None, render: Callable[[], Markup]) -> Markup:
        """The cached HTML of ``text`` under ``key``, else ``render()``'s, stored."""
        digest = hashlib.blake2b((text or "").encode(), digest_size=16).digest()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == digest:
                self._entries.move_to_end(key)
                return hit[1]
        html = render()
        size = sys.getsizeof(html)
        if size > self.max_bytes:
            return html
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (digest, html, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, _, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
        return html
