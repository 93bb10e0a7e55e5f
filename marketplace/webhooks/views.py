"""Webhook endpoints: verify, store under a unique delivery id, enqueue, answer 202.

GitHub: ``X-Hub-Signature-256`` is ``sha256=`` + HMAC-SHA256 of the raw body
with ``GITHUB_WEBHOOK_SECRET``, compared in constant time; ``X-GitHub-Delivery``
is the delivery id; ``X-GitHub-Event`` the event. GitLab: ``X-Gitlab-Token``
equals ``GITLAB_WEBHOOK_TOKEN``; the delivery id is ``Idempotency-Key`` (the
same on GitLab's retries) or else ``X-Gitlab-Event-UUID``; ``X-Gitlab-Event``
the event.
"""
from __future__ import annotations

import hashlib
import hmac

import stripe
from flask import Blueprint, current_app, jsonify, request

from marketplace.extensions import db, limiter
from marketplace.webhooks.intake import BadBody, parse_body
from marketplace.webhooks.service import store

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
limiter.exempt(bp)  # a forge or Stripe retrying deliveries is never rate-limited
MAX_ID_LENGTH = 100


def _error(status: int, message: str):
    return jsonify(error={"status": status, "message": message}), status


def github_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha256=<hex HMAC-SHA256 of body with secret>``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _plain_text(value, max_length: int) -> bool:
    """Printable text that PostgreSQL can store (no NUL, no lone surrogate)."""
    if not isinstance(value, str) or len(value) > max_length or not value.isprintable():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _store(source: str, delivery_id: str | None, event: str | None, body: bytes, parsed=None):
    if not delivery_id or len(delivery_id) > MAX_ID_LENGTH or not delivery_id.isprintable():
        return _error(400, "missing or malformed delivery id header")
    if not event or len(event) > 100 or not event.isprintable():
        return _error(400, "missing event header")
    if parsed is None:
        try:
            parsed = parse_body(body)
        except BadBody as exc:
            return _error(400, str(exc))
    text, payload = parsed
    action = payload.get("action")
    if source == "gitlab":
        attributes = payload.get("object_attributes")
        if isinstance(attributes, dict) and "action" in attributes:
            action = attributes["action"]
    if action is not None and not _plain_text(action, 100):
        return _error(400, "the action is not plain text")
    stored_id, created = store(source, delivery_id, event, action or None, text)
    db.session.commit()
    if not created:
        return jsonify(status="duplicate", delivery_id=delivery_id), 200
    return jsonify(status="accepted", delivery_id=delivery_id, id=stored_id), 202


@bp.post("/github")
def github():
    """Receive one GitHub webhook delivery."""
    secret = current_app.config.get("GITHUB_WEBHOOK_SECRET")
    body = request.get_data(cache=False)
    if not secret or not github_signature_valid(secret, body, request.headers.get("X-Hub-Signature-256")):
        return _error(401, "bad or missing signature")
    return _store("github", request.headers.get("X-GitHub-Delivery"), request.headers.get("X-GitHub-Event"), body)


@bp.post("/gitlab")
def gitlab():
    """Receive one GitLab webhook delivery."""
    token = current_app.config.get("GITLAB_WEBHOOK_TOKEN")
    given = request.headers.get("X-Gitlab-Token", "")
    if not token or not hmac.compare_digest(token.encode(), given.encode()):
        return _error(401, "bad or missing token")
    delivery_id = request.headers.get("Idempotency-Key") or request.headers.get("X-Gitlab-Event-UUID")
    return _store("gitlab", delivery_id, request.headers.get("X-Gitlab-Event"), request.get_data(cache=False))


@bp.post("/stripe")
def stripe_webhook():
    """Receive one Stripe event; the library verifies ``Stripe-Signature`` on the raw body."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    body = request.get_data(cache=False)
    if not secret:
        return _error(401, "bad or missing signature")
    try:
        # Verify on the raw bytes first, then the same parsing step as the forges'.
        stripe.WebhookSignature.verify_header(body, request.headers.get("Stripe-Signature", ""), secret)
    except stripe.SignatureVerificationError:
        return _error(401, "bad or missing signature")
    except UnicodeDecodeError:
        return _error(400, "the body is not UTF-8")
    try:
        parsed = parse_body(body)
    except BadBody as exc:
        return _error(400, str(exc))
    event_id, event_type = parsed[1].get("id"), parsed[1].get("type")
    if not isinstance(event_type, str):
        return _error(400, "the event has no type")
    return _store("stripe", event_id if isinstance(event_id, str) else None, event_type, body, parsed)
