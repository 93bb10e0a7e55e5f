"""The one parsing step every webhook intake (GitHub, GitLab, Stripe) runs on
the raw body, after its signature or token is checked and before anything is
stored: UTF-8 text, one JSON object, nested at most ``MAX_DEPTH`` levels.

Anything else is a :class:`BadBody`, answered 400 by the views. A forge or
Stripe never sends such a body; a correctly signed one is a bug or a leaked
secret, and must never reach a job (or crash the intake with a 500).
"""
from __future__ import annotations

import json

# The deepest recorded payload (a GitHub pull_request delivery) nests 6 levels;
# 64 leaves room for any real event and stops pathological bodies early.
MAX_DEPTH = 64


class BadBody(ValueError):
    """The body is not UTF-8 JSON holding one object within the depth limit; the message says which."""


def _depth_exceeds(value, limit: int) -> bool:
    """True when ``value`` nests containers deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> tuple[str, dict]:
    """Return ``(text, payload)`` of a webhook body: the decoded text (stored as
    received, so a replay sees what was signed) and the JSON object it holds.

    Raises :class:`BadBody` when the body is not UTF-8 (forges and Stripe send
    UTF-8; ``json.loads`` would also take UTF-16 bytes), holds a raw NUL
    character, is not JSON, is JSON but not an object (``null``, ``[]``,
    ``"x"``, ``1``), or nests deeper than ``max_depth`` (a 50,000-deep body
    would otherwise exhaust the parser's recursion).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("the body is not UTF-8") from None
    if "\x00" in text:
        raise BadBody("the body contains a NUL character")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise BadBody("the body is not JSON, or nests too deeply") from None
    if not isinstance(payload, dict):
        raise BadBody("the body is not a JSON object")
    if _depth_exceeds(payload, max_depth):
        raise BadBody(f"the body nests deeper than {max_depth} levels")
    return text, payload
