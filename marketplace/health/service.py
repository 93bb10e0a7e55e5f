"""What the readiness probe checks, and the WSGI wrapper that lets probes through the host check."""
from __future__ import annotations

import redis
from flask import Flask
from sqlalchemy import text

from marketplace.extensions import db
from marketplace.notifications.outbox import waiting_count

PROBE_PATHS = ("/healthz", "/readyz")


def readiness(app: Flask) -> tuple[bool, dict[str, str | int]]:
    """``(ready, checks)``: ``checks`` maps ``database`` and ``redis`` to
    ``"ok"``, ``"not used"`` (Redis without ``REDIS_URL``) or ``"down: <error
    class>"``, and ``outbox_waiting`` to the e-mails not sent yet (when the
    database answers). Ready when nothing is down. Redis is asked with one
    second timeouts, so a dead host never holds a probe."""
    checks: dict[str, str | int] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["outbox_waiting"] = waiting_count()
    except Exception as exc:  # any driver error means "not ready", with its name
        db.session.rollback()
        checks["database"] = f"down: {type(exc).__name__}"
    url = app.config.get("REDIS_URL")
    if not url:
        checks["redis"] = "not used"
    else:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
            checks["redis"] = "ok"
        except redis.exceptions.RedisError as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
        finally:
            client.close()
    ready = not any(str(value).startswith("down") for value in checks.values())
    return ready, checks


class ProbeHosts:
    """WSGI middleware: a request for a probe path gets the first of
    ``TRUSTED_HOSTS`` as its Host, so that a load balancer probing by IP
    address is not refused by the host check (which answers 400 before any
    view runs). Every other request is passed on untouched."""

    def __init__(self, wsgi_app, trusted_hosts: list[str]):
        self.wsgi_app = wsgi_app
        self.host = trusted_hosts[0].lstrip(".")

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") in PROBE_PATHS:
            environ = {**environ, "HTTP_HOST": self.host}
        return self.wsgi_app(environ, start_response)
