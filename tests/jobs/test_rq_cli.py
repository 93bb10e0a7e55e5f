"""``flask rq worker`` and ``flask rq cron`` (jobs/cli.py) as they run in production: separate
processes on real Redis, RQ's forking worker running each job in a child with the app context."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from rq import Queue
from rq.job import JobStatus
from sqlalchemy import func, select

from marketplace.projects.models import MemberProject
from tests.conftest import ROOT
from tests.jobs.rq_probe import count_projects


@pytest.fixture
def flask_env(database_url, redis_url, rq_redis) -> dict:
    """The environment of a deployed process: the app from wsgi.py on the test database and Redis."""
    return {**os.environ, "FLASK_APP": "wsgi.py", "SECRET_KEY": "rq-cli-test", "DATABASE_URL": database_url,
            "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}


def flask(env: dict, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, check=False,
                          text=True, timeout=timeout)


def test_flask_rq_worker_forks_and_runs_a_queued_job_with_the_app(flask_env, rq_redis, session):
    queue = Queue("default", connection=rq_redis)
    job = queue.enqueue(count_projects)
    done = flask(flask_env, "rq", "worker", "default", "--burst", "--no-scheduler")
    assert done.returncode == 0, done.stderr[-2000:]
    job.refresh()
    assert job.get_status() is JobStatus.FINISHED, (job.get_status(), job.exc_info)
    assert job.return_value() == session.scalar(select(func.count()).select_from(MemberProject)) > 0
    assert job.worker_name and queue.count == 0


def test_flask_rq_worker_refuses_an_unknown_queue(flask_env):
    done = flask(flask_env, "rq", "worker", "nope", "--burst")
    assert done.returncode == 2 and "unknown queues: nope" in done.stderr


def test_flask_rq_cron_enqueues_the_schedule_and_the_worker_runs_it(flask_env, rq_redis, session):
    queue = Queue("default", connection=rq_redis)
    cron = subprocess.Popen([sys.executable, "-m", "flask", "rq", "cron", "--config",
                             str(ROOT / "tests" / "jobs" / "rq_probe_cron.py")],
                            cwd=ROOT, env=flask_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while queue.count == 0 and time.monotonic() < deadline and cron.poll() is None:
            time.sleep(0.2)
    finally:
        cron.terminate()
        output = cron.communicate(timeout=30)[0]
    assert queue.count == 1, output[-2000:]
    [job] = queue.jobs
    assert job.func_name == "tests.jobs.rq_probe.count_projects"
    done = flask(flask_env, "rq", "worker", "default", "--burst", "--no-scheduler")
    assert done.returncode == 0, done.stderr[-2000:]
    job.refresh()
    assert job.get_status() is JobStatus.FINISHED
    assert job.return_value() == session.scalar(select(func.count()).select_from(MemberProject))


def test_flask_rq_health_fails_when_no_worker_listens(flask_env):
    done = flask(flask_env, "rq", "health")
    assert done.returncode == 1
    assert "redis: ok" in done.stdout
    assert "webhooks: 0 waiting, 0 failed, 0 workers" in done.stdout
    assert "no worker listens on: webhooks, money, sync, notifications, default" in done.stdout


def test_flask_rq_health_fails_when_redis_is_down(flask_env):
    done = flask({**flask_env, "REDIS_URL": "redis://127.0.0.1:9/0"}, "rq", "health")
    assert (done.returncode, done.stdout.strip()) == (1, "redis: down (ConnectionError)")
