"""URL converters, and links built once for many rows."""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, quote_plus

from flask import url_for
from werkzeug.routing import IntegerConverter

# What werkzeug leaves unquoted: in a path segment (BaseConverter.to_url) and
# in a query value (werkzeug.urls._urlencode).
_PATH_SAFE = "!$&'()*+,/:;=@"
_QUERY_SAFE = "!$'()*,/:;?@"


class RowIdConverter(IntegerConverter):
    """A positive row id that fits a 32-bit signed integer column.

    Larger numbers do not match the route (404) instead of overflowing the
    database driver.
    """

    def __init__(self, map, **kwargs):
        super().__init__(map, min=1, max=2**31 - 1, **kwargs)


def _sentinel(index: int) -> int:
    # A number: the number converters take it, every converter and the query
    # encoding write it as its digits, and no endpoint's fixed part holds them.
    return 1_987_654_320 + index


def url_pattern(endpoint: str, *names: str, **fixed) -> Callable[..., str]:
    """A function of ``names``' values (positional, in that order) that gives
    what ``url_for(endpoint, **fixed, **{name: value, ...})`` gives, built with
    one ``url_for`` for a page of rows instead of one per row (each
    ``url_for`` walks the URL map and werkzeug's builders).

    A value is quoted as werkzeug quotes it: in the path as its default and
    number converters do (``str`` then percent-encoding), in the query string
    as its query encoding does. Values must be str or int, never None, and
    fit their converter (as for ``url_for``). Not for a fixed-digit number
    converter (none here); a rule that will not take or keep a number (an
    ``any`` converter) falls back to ``url_for`` per call. ``fixed`` takes
    ``url_for``'s own options (``_external``). Needs an app and request
    context, like ``url_for``."""
    if not names:
        url = url_for(endpoint, **fixed)
        return lambda: url
    def per_call(*values) -> str:
        return url_for(endpoint, **fixed, **dict(zip(names, values)))

    try:
        built = url_for(endpoint, **fixed, **{name: _sentinel(i) for i, name in enumerate(names)})
    except ValueError:
        return per_call
    query_at = built.find("?")
    pieces: list[str] = []
    quoters: list[Callable[[object], str]] = []
    rest = built
    for i in range(len(names)):
        sentinel = str(_sentinel(i))
        head, found, rest = rest.partition(sentinel)
        if not found or built.count(sentinel) != 1:  # out of order, or changed by a converter
            return per_call
        in_query = query_at != -1 and built.index(sentinel) > query_at
        pieces.append(head)
        quoters.append((lambda v: quote_plus(str(v), safe=_QUERY_SAFE)) if in_query
                       else (lambda v: quote(str(v), safe=_PATH_SAFE)))
    tail = rest
    if len(names) == 1:
        head, quoter = pieces[0], quoters[0]
        return lambda value: head + quoter(value) + tail

    def build(*values) -> str:
        return "".join(piece + quoter(value) for piece, quoter, value in zip(pieces, quoters, values)) + tail

    return build
