"""Reading issue references out of pull/merge request text.

GitHub ("Linking a pull request to an issue"): a closing keyword — close,
closes, closed, fix, fixes, fixed, resolve, resolves, resolved — directly
followed (optionally by a colon) by ``#N``, ``owner/repo#N`` or the issue's
URL. GitLab ("Default closing pattern") also accepts closing, fixing,
resolving, implement(s|ed|ing), an optional "issue"/"issues" word and lists
joined by commas or "and"; its URLs have ``/-/issues/N``. Any other reference
is a mention.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_SEGMENT = r"(?!-/)[A-Za-z0-9_.-]+"  # GitLab puts "/-/" before sub-pages; "-" is no segment
_REPO = rf"{_SEGMENT}(?:/{_SEGMENT})+"
_REF = (
    rf"(?:https?://(?P<host>[A-Za-z0-9.-]+)/(?P<url_path>{_REPO})/(?:-/)?issues/(?P<url_number>\d+)"
    rf"|(?P<path>{_REPO})?#(?P<number>\d+))"
)
# Not inside a word, a path or a host name ("github.com/o/r#12" is no reference).
_REF_RE = re.compile(r"(?<![\w/#.:-])" + _REF + r"(?!\w)")
_GITHUB_CLOSING = re.compile(
    r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b:?[ \t]+(?=(" + _REF + r"))"
)
# GitLab's default closing pattern is case-sensitive after the first letter.
_GITLAB_CLOSING = re.compile(
    r"\b(?:[Cc]los(?:e[sd]?|ing)|[Ff]ix(?:e[sd]|ing)?|[Rr]esolv(?:e[sd]?|ing)|[Ii]mplement(?:s|ed|ing)?)\b:?"
    r" +(?:issues? +)?"
)
# GitLab joins references with ", ", " and ", or plain spaces: (?: *,? +and +| *,? *)
_GITLAB_LIST_SEPARATOR = re.compile(r"^(?: *,? +and +| *,? *)")
MAX_NUMBER = 2**31 - 1
MAX_PATH = 511

# GitHub ignores references in code and quotes: fenced blocks, inline code, "> " lines.
_FENCE = re.compile(r"^[ ]{0,3}(```|~~~).*?(?:^[ ]{0,3}\1[^\n]*$|\Z)", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_QUOTE_LINE = re.compile(r"^[ ]{0,3}>.*$", re.M)


def _without_code_and_quotes(text: str) -> str:
    text = _FENCE.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    return _QUOTE_LINE.sub(" ", text)


@dataclass(frozen=True)
class Reference:
    """An issue reference: ``path`` is "owner/repo" (None for the same repository)."""

    host: str | None
    path: str | None
    number: int
    closing: bool


def _reference(match: re.Match, closing: bool) -> Reference:
    if match.group("url_number"):
        return Reference(match.group("host").lower(), match.group("url_path"), int(match.group("url_number")), closing)
    return Reference(None, match.group("path"), int(match.group("number")), closing)


def _closing_spans(text: str, forge: str) -> list[tuple[int, int]]:
    """Character spans of references that a closing keyword governs."""
    spans: list[tuple[int, int]] = []
    if forge == "github":
        for keyword in _GITHUB_CLOSING.finditer(text):
            ref = _REF_RE.match(text, keyword.end())
            if ref:
                spans.append(ref.span())
        return spans
    for keyword in _GITLAB_CLOSING.finditer(text):
        position = keyword.end()
        while True:
            ref = _REF_RE.match(text, position)
            if not ref:
                break
            spans.append(ref.span())
            separator = _GITLAB_LIST_SEPARATOR.match(text[ref.end():])
            if not separator:
                break
            position = ref.end() + separator.end()
    return spans


def find_references(text: str | None, forge: str = "github") -> list[Reference]:
    """Every issue reference in ``text``, closing or mention, in order, without duplicates.

    References in code (fenced or inline) and in block quotes are ignored, as
    GitHub does. A reference both closed and mentioned counts as closing.
    """
    if not text:
        return []
    text = _without_code_and_quotes(text)
    closing = set(_closing_spans(text, forge))
    found: dict[tuple, Reference] = {}
    for match in _REF_RE.finditer(text):
        ref = _reference(match, match.span() in closing)
        if ref.number > MAX_NUMBER or len(ref.path or "") > MAX_PATH or len(ref.host or "") > 255:
            continue  # a build number or a pasted log line, not an issue
        key = (ref.host, (ref.path or "").lower(), ref.number)
        if key not in found or (ref.closing and not found[key].closing):
            found[key] = ref
    return list(found.values())
