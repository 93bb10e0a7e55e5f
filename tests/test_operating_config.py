"""What an operator sets (issue 23): Gunicorn's settings from the environment
(timeouts, access log to standard output, the proxies trusted for forwarded
headers), the client address behind a proxy as the rate limits see it, and
Sentry as an option that never stops the start."""
from __future__ import annotations

import logging
import runpy

import pytest

from marketplace import logconfig
from tests.accounts.helpers import csrf
from tests.conftest import ROOT, make_app


def _gunicorn_settings(monkeypatch, **env: str) -> dict:
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "FORWARDED_ALLOW_IPS", "PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults_trust_forwarded_headers_from_the_local_proxy_only(monkeypatch):
    settings = _gunicorn_settings(monkeypatch)
    assert settings["forwarded_allow_ips"] == "127.0.0.1"
    assert (settings["bind"], settings["workers"], settings["threads"], settings["timeout"]) == (
        "0.0.0.0:8000", 2, 4, 30)
    assert (settings["accesslog"], settings["errorlog"]) == ("-", "-")
    assert "req=%({x-request-id}o)s" in settings["access_log_format"]
    # Gunicorn's own records go through the app's logging (token links redacted).
    assert settings["logconfig_dict"] == logconfig.logging_dict({})


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    settings = _gunicorn_settings(monkeypatch, WEB_CONCURRENCY="5", GUNICORN_THREADS="2", GUNICORN_TIMEOUT="45",
                                  FORWARDED_ALLOW_IPS="10.0.0.2,10.0.0.3", PORT="9100", HOST="127.0.0.1")
    assert (settings["bind"], settings["workers"], settings["threads"], settings["timeout"]) == (
        "127.0.0.1:9100", 5, 2, 45)
    assert settings["forwarded_allow_ips"] == "10.0.0.2,10.0.0.3"


def _sign_in_attempts(client, forwarded_for: str, count: int) -> list[int]:
    token = csrf(client)
    return [client.post("/login", data={"email": f"proxy-{forwarded_for}-{n}@example.org", "password": "x" * 12,
                                        "csrf_token": token},
                        headers={"X-Forwarded-For": forwarded_for}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
                        ).status_code for n in range(count)]


def test_behind_one_proxy_the_limits_count_each_client_not_the_proxy(database_url):
    app = make_app(database_url, PROXY_FIX=1, RATELIMIT_AUTH="2 per minute")
    client = app.test_client()
    # Two clients behind the proxy: each has its own two attempts.
    assert _sign_in_attempts(client, "192.0.2.61", 2) == [400, 400]
    assert _sign_in_attempts(client, "192.0.2.62", 2) == [400, 400]
    assert _sign_in_attempts(client, "192.0.2.61", 1) == [429]


def test_without_a_proxy_a_forged_forwarded_header_does_not_escape_the_limit(database_url):
    app = make_app(database_url, PROXY_FIX=0, RATELIMIT_AUTH="2 per minute")
    client = app.test_client()
    statuses = [_sign_in_attempts(client, f"192.0.2.{70 + n}", 1)[0] for n in range(3)]
    assert statuses == [400, 400, 429]  # the header is ignored: one client address, counted once


def test_an_app_without_limits_does_not_turn_them_off_for_the_next_app(database_url):
    # The demo makes its app with RATELIMIT_ENABLED False; the limiter is one per process.
    make_app(database_url, RATELIMIT_ENABLED=False)
    app = make_app(database_url, PROXY_FIX=0, RATELIMIT_AUTH="1 per minute")
    assert app.config["RATELIMIT_ENABLED"] is True
    assert _sign_in_attempts(app.test_client(), "192.0.2.90", 2) == [400, 429]


def test_sentry_without_its_package_is_a_warning_not_a_failed_start(monkeypatch, caplog):
    monkeypatch.setattr(logconfig, "sentry_sdk", None)
    with caplog.at_level(logging.WARNING, logger="marketplace.logconfig"):
        logconfig._init_sentry("https://key@sentry.example/1")
    assert "sentry-sdk is not installed" in caplog.text


def test_sentry_with_its_package_gets_the_flask_and_rq_integrations_and_no_personal_data(monkeypatch):
    calls = []

    class Integration:
        def __init__(self):
            self.name = type(self).__name__

    fake = type("sentry_sdk", (), {"init": staticmethod(lambda **kwargs: calls.append(kwargs))})
    monkeypatch.setattr(logconfig, "sentry_sdk", fake)
    monkeypatch.setattr(logconfig, "FlaskIntegration", type("FlaskIntegration", (Integration,), {}), raising=False)
    monkeypatch.setattr(logconfig, "RqIntegration", type("RqIntegration", (Integration,), {}), raising=False)
    logconfig.configure_logging({"SENTRY_DSN": "https://key@sentry.example/1", "LOG_FORMAT": "text"})
    [call] = calls
    assert call["dsn"] == "https://key@sentry.example/1"
    assert sorted(i.name for i in call["integrations"]) == ["FlaskIntegration", "RqIntegration"]
    assert call["send_default_pii"] is False


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
