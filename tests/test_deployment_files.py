"""The deployment files (issue 23). Docker is not running on the build
machine, so what can be checked without it is: compose.yaml parses and runs
PostgreSQL, Redis and each Procfile process from one image; the image's entry
script runs exactly the Procfile's commands; the Dockerfile leaves the
stand-ins out. (tests/test_procfile_stack.py runs the Procfile itself.)"""
from __future__ import annotations

import subprocess

import yaml

from tests.conftest import ROOT

PROCESSES = ("web", "webhooks", "money", "sync", "cron")


def _procfile() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


def test_the_procfile_has_web_workers_per_queue_group_and_cron():
    procfile = _procfile()
    assert tuple(procfile) == PROCESSES
    assert procfile["web"].startswith("flask db upgrade && ")  # migrations before the web process serves
    assert procfile["webhooks"] == "flask rq worker webhooks"
    assert procfile["money"] == "flask rq worker money notifications"  # never behind a burst of webhooks
    assert procfile["cron"] == "flask rq cron"


def test_the_image_entry_script_runs_the_procfiles_commands():
    for name, command in _procfile().items():
        done = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "--print", name], capture_output=True,
                              text=True, check=False)
        assert (done.returncode, done.stdout.strip()) == (0, command)
    done = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "--print", "nope"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and "no process named nope" in done.stderr
    done = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "echo", "as given"], capture_output=True,
                          text=True, check=False)
    assert done.stdout == "as given\n"


def test_compose_runs_postgres_redis_and_every_process_from_one_image():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "redis", *PROCESSES}
    for name in PROCESSES:
        assert services[name]["command"] == [name]
        assert services[name]["image"] == "backlog-commons"
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])


def test_the_image_leaves_the_stand_ins_out_and_starts_through_the_entry_script():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "rm -rf marketplace/standins" in dockerfile
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile and 'CMD ["web"]' in dockerfile
