"""Posting signed webhook deliveries built from the recorded payloads."""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid

from tests.conftest import FIXTURES, GITHUB_SECRET, GITLAB_TOKEN


def payload(path: str) -> dict:
    """A deep copy of a recorded payload, e.g. ``github/webhooks/issues/opened.json``."""
    return copy.deepcopy(json.loads((FIXTURES / path).read_text()))


def sign(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_github(client, event: str, body, delivery_id: str | None = None, signature: str | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature if signature is not None else sign(raw),
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/github", data=raw, headers=headers)


def post_gitlab(client, event: str, body, delivery_id: str | None = None, token: str = GITLAB_TOKEN):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": token,
        "Idempotency-Key": delivery_id or str(uuid.uuid4()),
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/gitlab", data=raw, headers=headers)
