"""Redis down (issue 23): a real app process started with a ``REDIS_URL`` where
nothing listens still signs people up, in and out, and sends reset links.

The rate limiter falls back to memory (Flask-Limiter's in-memory fallback),
and the e-mails those pages cause wait in the outbox table until a pass sends
them. The process runs on its own SQLite database in a temporary directory:
what it commits never reaches the shared test database.
"""
from __future__ import annotations

import http.cookiejar
import mailbox
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class DeadRedisApp:
    """``flask run`` on a fresh SQLite database, with ``REDIS_URL`` on a port nobody listens on."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = _free_port()
        self.dead_redis_port = _free_port()  # bound once, closed: nothing listens there
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox_dir = directory / "mail"
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith(("DATABASE_URL", "REDIS_URL", "MAIL_", "FLASK_", "PUBLIC_URL",
                                            "RATELIMIT_", "STANDINS", "APP_ENV"))}
        self.env.update(DATABASE_URL=f"sqlite:///{directory / 'app.sqlite3'}", SECRET_KEY="redis-down-secret",
                        REDIS_URL=f"redis://127.0.0.1:{self.dead_redis_port}/0", FLASK_APP=str(ROOT / "wsgi.py"),
                        PYTHONPATH=str(ROOT), MAIL_OUTBOX_DIR=str(self.outbox_dir), SESSION_COOKIE_SECURE="0",
                        PUBLIC_URL=self.url)
        self.process: subprocess.Popen | None = None
        self.log = directory / "app.log"
        cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies), _NoRedirect)

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        """``flask ARGS`` on the same database and dead Redis."""
        return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300)

    def start(self) -> None:
        done = self.flask("db", "upgrade")
        assert done.returncode == 0, done.stderr
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "run", "--no-reload", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        for _ in range(300):
            if self.process.poll() is not None:
                raise AssertionError(f"the app stopped:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310  (our own process)
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the app did not answer in a minute:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        """``(status, Location header, body)`` of a GET, or of a POST of ``data``."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.url + path, data=body, timeout=30) as response:
                return response.status, response.headers.get("Location", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location", ""), error.read().decode()

    def post_form(self, path: str, fields: dict) -> tuple[int, str, str]:
        """GET the form for its CSRF token, then POST ``fields`` with it."""
        status, _location, html = self.request(path)
        assert status == 200, html
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
        return self.request(path, {"csrf_token": token, **fields})


@pytest.fixture(scope="module")
def dead_redis_app(tmp_path_factory):
    app = DeadRedisApp(tmp_path_factory.mktemp("redis-down"))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", app.dead_redis_port)) != 0, "something listens on the dead port"
    app.start()
    yield app
    app.stop()


def test_sign_up_sign_in_and_reset_work_while_redis_is_down(dead_redis_app):
    app = dead_redis_app
    status, location, body = app.post_form("/signup", {"display_name": "Ama", "email": "ama@example.org",
                                                       "password": PASSWORD, "is_funder": "y"})
    assert (status, urllib.parse.urlsplit(location).path) == (303, "/login"), body
    status, location, body = app.post_form("/login", {"email": "ama@example.org", "password": PASSWORD})
    assert (status, urllib.parse.urlsplit(location).path) == (303, "/"), body
    status, location, body = app.post_form("/reset", {"email": "ama@example.org"})
    assert (status, urllib.parse.urlsplit(location).path) == (303, "/login"), body
    status, _location, body = app.post_form("/login", {"email": "ama@example.org", "password": "wrong " + PASSWORD})
    assert status == 400 and "not right" in body
    log = app.log.read_text()
    assert not re.search(r'HTTP/1\.1" 5\d\d', log)


def test_the_per_account_back_off_holds_in_memory_while_redis_is_down(dead_redis_app):
    # Five wrong passwords for one address are free; the sixth attempt waits
    # 30 seconds (marketplace.accounts.backoff), counted in this process's memory.
    answers = [dead_redis_app.post_form("/login", {"email": "guessed@example.org", "password": "x" * 12})
               for _ in range(6)]
    assert [status for status, _location, _body in answers] == [400] * 5 + [429]
    assert "Try again in 30 seconds" in answers[-1][2]


def test_limits_still_hold_in_memory_while_redis_is_down(dead_redis_app):
    # RATELIMIT_AUTH's default is 10 per minute per client address: past it a
    # sign-in attempt is refused by the in-memory fallback, whatever the address typed.
    statuses = [dead_redis_app.post_form("/login", {"email": f"nobody{n}@example.org", "password": "x" * 12})[0]
                for n in range(12)]
    assert 429 in statuses and 500 not in statuses
    assert statuses.count(400) < 12


def test_mail_caused_while_redis_is_down_waits_in_the_outbox_and_is_sent_by_the_pass(dead_redis_app):
    app = dead_redis_app
    status, _location, body = app.post_form("/signup", {"display_name": "Kofi", "email": "kofi@example.org",
                                                        "password": PASSWORD})
    assert status == 303, body
    box = mailbox.Maildir(app.outbox_dir, create=True)
    assert [m["To"] for m in box if m["To"] == "kofi@example.org"] == []  # its job could not be queued
    done = app.flask("jobs", "send-outbox")  # Redis still down: the pass needs only the database
    assert done.returncode == 0, done.stderr
    assert "sent:" in done.stdout
    [message] = [m for m in mailbox.Maildir(app.outbox_dir) if m["To"] == "kofi@example.org"]
    assert "/verify/" in message.get_payload()
