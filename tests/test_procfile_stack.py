"""The Procfile's whole stack (issue 23) under ``honcho start`` on this machine's
PostgreSQL and Redis: Gunicorn after the migrations, a worker per queue group
and the cron scheduler. One signed GitHub webhook is driven through it (the
web process stores it, the webhooks worker handles it), a sign-up's e-mail
goes through the outbox and the notifications worker, /readyz answers, and
``flask rq health`` sees a worker on every queue."""
from __future__ import annotations

import http.cookiejar
import json
import mailbox
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from tests.conftest import GITHUB_SECRET, ROOT


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(predicate, seconds: float, what: str, log) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen in {seconds} s:\n{log()[-4000:]}")


@pytest.fixture
def stack(database_url, redis_url, rq_redis, tmp_path):
    if shutil.which("honcho", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("honcho is not installed (pip install honcho)")
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL")
    name = f"{sa.make_url(database_url).database}_stack"
    url = sa.make_url(database_url).set(database=name)
    admin = sa.create_engine(sa.make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    port = _free_port()
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "REDIS_URL", "MAIL_"))}
    env.update(FLASK_APP="wsgi.py", PYTHONPATH=str(ROOT), APP_ENV="development", SECRET_KEY="stack-test",
               DATABASE_URL=url.render_as_string(hide_password=False), REDIS_URL=redis_url, PORT=str(port),
               HOST="127.0.0.1", PUBLIC_URL=f"http://127.0.0.1:{port}", WEB_CONCURRENCY="1",
               GITHUB_WEBHOOK_SECRET=GITHUB_SECRET, SESSION_COOKIE_SECURE="0", MAIL_OUTBOX_DIR=str(tmp_path / "mail"), LOG_FORMAT="json",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    log_path = tmp_path / "honcho.log"
    process = subprocess.Popen(["honcho", "-e", str(empty_env_file), "start"], cwd=ROOT, env=env,
                               stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    engine = sa.create_engine(url)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "engine": engine, "process": process,
               "log": log_path.read_text, "mail": tmp_path / "mail"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own stack)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def test_honcho_runs_the_stack_and_one_webhook_goes_through_it(stack):
    log = stack["log"]
    # The operator's script (.ci/drive_webhook.py): /readyz, then one signed GitHub
    # delivery stored by the web process and handled by the webhooks worker.
    driven = subprocess.run([sys.executable, str(ROOT / ".ci" / "drive_webhook.py"), stack["url"], "--timeout", "120"],
                            cwd=ROOT, env=stack["env"], capture_output=True, text=True, timeout=300)
    assert driven.returncode == 0, driven.stdout + driven.stderr + log()[-4000:]
    delivery, status = re.fullmatch(r"delivery (\S+): (\w+)\n", driven.stdout).groups()
    with stack["engine"].connect() as conn:
        assert conn.scalar(sa.text("SELECT status FROM webhook_delivery WHERE delivery_id = :d"),
                           {"d": delivery}) == status == "processed"
    health = subprocess.run([sys.executable, "-m", "flask", "rq", "health"], cwd=ROOT, env=stack["env"],
                            capture_output=True, text=True, timeout=60)
    assert health.returncode == 0, health.stdout + health.stderr
    for queue in ("webhooks", "money", "notifications", "sync", "default"):
        assert re.search(rf"^{queue}: \d+ waiting, \d+ failed, [1-9]\d* workers$", health.stdout, re.M), health.stdout
    assert "redis: ok" in health.stdout
    # Each log line is one JSON object (LOG_FORMAT=json), whichever process wrote it.
    web_lines = [line.split("| ", 1)[1] for line in log().splitlines() if line.split(" ", 1)[-1].startswith("web")
                 and "| {" in line]
    assert web_lines and all(json.loads(line)["level"] for line in web_lines)


def test_a_sign_up_e_mail_goes_through_the_outbox_and_the_notifications_worker(stack):
    log = stack["log"]
    _wait(lambda: _status(stack["url"] + "/readyz") == 200, 120, "/readyz answering 200", log)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(stack["url"] + "/signup", timeout=10) as response:
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', response.read().decode()).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "display_name": "Stack", "email": "stack@example.org",
                                   "password": "correct horse battery staple"}).encode()
    with opener.open(stack["url"] + "/signup", data=form, timeout=30) as response:
        assert response.status == 200  # followed to the sign-in page

    def sent() -> list[str]:
        return [m["To"] for m in mailbox.Maildir(stack["mail"], create=True)]

    _wait(lambda: sent() == ["stack@example.org"], 60, "the verification e-mail sent by the worker", log)
    with stack["engine"].connect() as conn:
        assert conn.scalar(sa.text("SELECT state FROM outbox_message WHERE recipient = 'stack@example.org'")) == "sent"
