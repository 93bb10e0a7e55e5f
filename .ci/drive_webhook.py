"""Drive one signed GitHub webhook through a running stack (``honcho start``,
compose, or production) and wait until a worker has handled it.

    GITHUB_WEBHOOK_SECRET=… DATABASE_URL=… python .ci/drive_webhook.py http://127.0.0.1:8000

Waits for ``/readyz`` to answer 200 (database and Redis up), posts a signed
``ping`` delivery to ``/webhooks/github`` (the web process stores it and
queues its job), then reads the stored delivery in ``DATABASE_URL`` until the
``webhooks`` worker has handled it. Prints ``delivery <id>: <status>`` and
exits 0; exits 1 naming what did not happen within ``--timeout`` seconds.
Tested by tests/test_procfile_stack.py.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

import sqlalchemy as sa

HANDLED = ("processed", "ignored")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (the operator's own stack)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    sys.exit(f"{what} did not happen in {timeout:.0f} s")


def drive(base_url: str, secret: str, database_url: str, timeout: float) -> str:
    """Post one signed ping and wait for its handling; returns the delivery's status."""
    _until(lambda: _status(base_url + "/readyz") == 200, timeout, "/readyz answering 200")
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    delivery = str(uuid.uuid4())
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(base_url + "/webhooks/github", data=body, method="POST", headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
        "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the operator's own stack)
        if response.status not in (200, 202):
            sys.exit(f"/webhooks/github answered {response.status}")
    url = database_url.replace("postgres://", "postgresql+psycopg://", 1)
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    found: dict[str, str | None] = {}

    def handled() -> bool:
        with engine.connect() as conn:
            found["status"] = conn.scalar(sa.text("SELECT status FROM webhook_delivery WHERE delivery_id = :d"),
                                          {"d": delivery})
        return found["status"] in HANDLED

    try:
        _until(handled, timeout, f"delivery {delivery} handled by the webhooks worker (status {found})")
    finally:
        engine.dispose()
    print(f"delivery {delivery}: {found['status']}")
    return found["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the stack's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for each step")
    args = parser.parse_args()
    secret, database_url = os.environ.get("GITHUB_WEBHOOK_SECRET"), os.environ.get("DATABASE_URL")
    if not secret or not database_url:
        sys.exit("set GITHUB_WEBHOOK_SECRET and DATABASE_URL as the stack has them")
    drive(args.url.rstrip("/"), secret, database_url, args.timeout)


if __name__ == "__main__":
    main()
