"""hostile input on /webhooks/github and /webhooks/gitlab.

Spec: malformed body -> 400 and nothing stored; never a 500.
The app runs with TESTING=True, so an unhandled exception propagates to the
test client; we turn that into a 500 answer to observe what a client would get.
"""
import json

import pytest
from sqlalchemy import func, select

from marketplace.webhooks.models import WebhookDelivery
from tests.webhooks.helpers import post_github, post_gitlab, sign


def deliveries(session) -> int:
    return session.scalar(select(func.count()).select_from(WebhookDelivery))


@pytest.fixture
def no_propagation(app):
    previous = app.config.get("PROPAGATE_EXCEPTIONS")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.testing = False
    yield
    app.testing = True
    app.config["PROPAGATE_EXCEPTIONS"] = previous


def _status(fn):
    try:
        return fn().status_code
    except Exception as exc:  # what the WSGI server would turn into a 500
        return f"500 ({type(exc).__name__}: {str(exc)[:80]})"


def test_utf16_json_body_is_400(client, session, no_propagation):
    """json.loads(bytes) accepts UTF-16/32; the later body.decode('utf-8') then raises."""
    raw = json.dumps({"action": "opened", "zen": "x"}).encode("utf-16")
    before = deliveries(session)
    assert _status(lambda: post_github(client, "ping", raw)) == 400
    assert deliveries(session) == before


def test_deeply_nested_json_is_400(client, session, no_propagation):
    """RecursionError from json.loads is not a ValueError; 200 kB body, well under 5 MB."""
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _status(lambda: post_github(client, "ping", raw)) == 400


def test_escaped_nul_in_action_is_400(client, session, no_propagation):
    """The raw body has no NUL byte, but the decoded action has one; it goes into a text column."""
    raw = b'{"action": "open\\u0000ed", "zen": "x"}'
    assert _status(lambda: post_github(client, "ping", raw)) in (202, 400)


def test_lone_surrogate_in_action_is_400(client, session, no_propagation):
    raw = b'{"action": "\\ud800", "zen": "x"}'
    assert _status(lambda: post_github(client, "ping", raw)) in (202, 400)


def test_gitlab_escaped_nul_in_object_attributes_action_is_400(client, session, no_propagation):
    raw = b'{"object_kind": "merge_request", "object_attributes": {"action": "\\u0000"}}'
    assert _status(lambda: post_gitlab(client, "Merge Request Hook", raw)) in (202, 400)


@pytest.mark.parametrize("header", [None, "sha1=abc", "SHA256=" + "0" * 64, "sha256=", "sha256=zz"])
def test_signature_header_variants_are_401(client, session, header):
    raw = b'{"zen": "x"}'
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "sig-variant", "Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    before = deliveries(session)
    assert client.post("/webhooks/github", data=raw, headers=headers).status_code == 401
    assert deliveries(session) == before


@pytest.mark.parametrize("headers", [
    {"X-GitHub-Delivery": "x" * 101, "X-GitHub-Event": "ping"},
    {"X-GitHub-Delivery": "", "X-GitHub-Event": "ping"},
    {"X-GitHub-Delivery": "ok-id"},
    {"X-GitHub-Delivery": "ok-id", "X-GitHub-Event": "e" * 101},
])
def test_bad_delivery_or_event_headers_are_400(client, session, headers):
    raw = b'{"zen": "x"}'
    before = deliveries(session)
    response = client.post("/webhooks/github", data=raw,
                           headers={**headers, "X-Hub-Signature-256": sign(raw)})
    assert response.status_code == 400
    assert deliveries(session) == before


def test_body_over_the_limit_is_413_and_nothing_stored(client, session):
    raw = b'{"zen": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    before = deliveries(session)
    assert post_github(client, "ping", raw).status_code == 413
    assert deliveries(session) == before


def test_raw_nul_and_invalid_utf8_are_400(client, session):
    for raw in (b'{"zen": "a\x00b"}', b'{"zen": "\xc3\x28"}', b"", b"null"):
        assert post_github(client, "ping", raw).status_code == 400


def test_gitlab_missing_token_and_missing_delivery_id(client, session):
    raw = b'{"object_kind": "issue"}'
    assert client.post("/webhooks/gitlab", data=raw, headers={"X-Gitlab-Event": "Issue Hook"}).status_code == 401
    response = client.post("/webhooks/gitlab", data=raw, headers={
        "X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": "test-gitlab-token"})
    assert response.status_code == 400
