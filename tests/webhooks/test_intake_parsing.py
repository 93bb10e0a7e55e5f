"""The three intakes (GitHub, GitLab, Stripe) share one parsing step: a
correctly signed body that is not UTF-8 JSON holding one object within the
depth limit is answered 400 and nothing is stored — never a 500 (issue 10 §4).
"""
import hashlib
import hmac
import time

import pytest
from sqlalchemy import func, select

from marketplace.webhooks.intake import MAX_DEPTH, BadBody, parse_body
from marketplace.webhooks.models import WebhookDelivery
from tests.conftest import STRIPE_SECRET
from tests.webhooks.helpers import post_github, post_gitlab

NOT_OBJECTS = [b"null", b"[]", b'"x"', b"1", b"true"]
DEEP_50K = b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
DEEP_OBJECTS = b'{"data":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}"


def nested_objects(depth: int) -> bytes:
    """``depth`` objects, each the only value of the one before: {"a":{"a":…1…}}."""
    return b'{"a":' * depth + b"1" + b"}" * depth


JUST_TOO_DEEP = nested_objects(MAX_DEPTH + 1)


def post_stripe(client, raw: bytes):
    timestamp = int(time.time())
    signature = hmac.new(STRIPE_SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return client.post("/webhooks/stripe", data=raw, headers={
        "Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"})


def post_any(client, intake: str, raw: bytes):
    if intake == "github":
        return post_github(client, "issues", raw)
    if intake == "gitlab":
        return post_gitlab(client, "Issue Hook", raw)
    return post_stripe(client, raw)


def deliveries(session) -> int:
    return session.scalar(select(func.count()).select_from(WebhookDelivery))


@pytest.fixture
def no_propagation(app):
    """Unhandled errors become the 500 a real client would get (not an exception in the test)."""
    app.testing = False
    yield
    app.testing = True


@pytest.mark.parametrize("intake", ["github", "gitlab", "stripe"])
@pytest.mark.parametrize("raw", NOT_OBJECTS, ids=["null", "list", "string", "number", "true"])
def test_a_signed_body_that_is_not_a_json_object_is_400_and_stores_nothing(client, session, no_propagation,
                                                                           intake, raw):
    before = deliveries(session)
    response = post_any(client, intake, raw)
    assert (response.status_code, response.get_json()["error"]["message"]) == (400, "the body is not a JSON object")
    assert deliveries(session) == before


@pytest.mark.parametrize("intake", ["github", "gitlab", "stripe"])
@pytest.mark.parametrize("raw", [DEEP_50K, DEEP_OBJECTS, JUST_TOO_DEEP], ids=["lists-50000", "objects-50000",
                                                                              "limit-plus-one"])
def test_a_signed_body_nested_too_deep_is_400_and_stores_nothing(client, session, no_propagation, intake, raw):
    before = deliveries(session)
    assert post_any(client, intake, raw).status_code == 400
    assert deliveries(session) == before


@pytest.mark.parametrize("intake", ["github", "gitlab", "stripe"])
@pytest.mark.parametrize("raw", [b"\xff\xfe{}", '{"id": "evt_1"}'.encode("utf-16"), b'{"a": "\x00"}', b"{nope"],
                         ids=["not-utf8", "utf16", "raw-nul", "not-json"])
def test_a_signed_body_that_is_not_utf8_json_is_400(client, session, no_propagation, intake, raw):
    before = deliveries(session)
    assert post_any(client, intake, raw).status_code == 400
    assert deliveries(session) == before


def test_the_depth_limit_admits_exactly_max_depth_levels():
    at_limit, nested = nested_objects(MAX_DEPTH), nested_objects(MAX_DEPTH + 1)
    text, payload = parse_body(at_limit)
    assert text == at_limit.decode() and isinstance(payload, dict)
    with pytest.raises(BadBody, match=f"deeper than {MAX_DEPTH} levels"):
        parse_body(nested)


def test_a_stripe_event_that_parses_is_still_stored_once(client, session):
    raw = b'{"id": "evt_intake_1", "object": "event", "type": "ping.test", "data": {"object": {}}}'
    first, second = post_stripe(client, raw), post_stripe(client, raw)
    assert (first.status_code, second.status_code) == (202, 200)
    assert session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.delivery_id == "evt_intake_1")) == 1
