"""Secrets at rest (issue 23): production refuses to start without a mail
transport (and without TRUSTED_HOSTS, and without Redis unless in-process
jobs are chosen); no token link is ever written to the log; the jobs in
Redis carry outbox row ids, never a message."""
from __future__ import annotations

import logging
import re

import pytest
from rq import Queue

from marketplace.config import is_production, production_refusals
from marketplace.projects.models import MemberProject, ProjectMaintainer
from tests.accounts.helpers import PASSWORD, as_user, csrf, person
from tests.conftest import make_app

PRODUCTION = {"APP_ENV": "production", "MAIL_SERVER": "smtp.example.org", "TRUSTED_HOSTS": ["commons.example.org"],
              "REDIS_URL": "redis://127.0.0.1:6379/0", "PUBLIC_URL": "https://commons.example.org"}


@pytest.mark.parametrize(("missing", "named"), [
    ("MAIL_SERVER", "MAIL_SERVER is not set"),
    ("TRUSTED_HOSTS", "TRUSTED_HOSTS is not set"),
    ("REDIS_URL", "REDIS_URL is not set"),
])
def test_production_refuses_to_start_without_what_it_needs(database_url, missing, named):
    config = {**PRODUCTION, missing: None}
    with pytest.raises(RuntimeError, match=re.escape(named)):
        make_app(database_url, **config)


def test_production_starts_with_a_mail_transport_and_in_process_jobs_only_when_chosen(database_url):
    assert make_app(database_url, **PRODUCTION).config["MAIL_SERVER"] == "smtp.example.org"
    app = make_app(database_url, **{**PRODUCTION, "REDIS_URL": None, "JOBS_IN_PROCESS": True})
    assert app.config["JOBS_IN_PROCESS"] is True


def test_production_is_named_or_inferred_from_an_https_address_without_debug():
    assert is_production({"APP_ENV": "production", "DEBUG": True})
    assert not is_production({"APP_ENV": "development", "PUBLIC_URL": "https://commons.example.org"})
    assert is_production({"PUBLIC_URL": "https://commons.example.org"})
    assert not is_production({"PUBLIC_URL": "https://commons.example.org", "DEBUG": True})
    assert not is_production({"PUBLIC_URL": "http://127.0.0.1:5000"})
    # The log transport is refused even with a local Maildir: that is a development tool.
    assert production_refusals({"PUBLIC_URL": "https://x.example", "MAIL_OUTBOX_DIR": "/tmp/mail",
                                "TRUSTED_HOSTS": ["x.example"], "REDIS_URL": "redis://r"}) == [
        "MAIL_SERVER is not set (without it e-mails would go to the log, links and all)"]


TOKEN_LINK = re.compile(r"/(verify|reset|invitations)/[A-Za-z0-9_.\-]{8,}")


def test_verification_reset_and_invitation_links_never_reach_the_log(app, client, session, caplog):
    assert app.config["MAIL_SERVER"] is None and not app.config.get("MAIL_OUTBOX_DIR")
    with caplog.at_level(logging.DEBUG):
        response = client.post("/signup", data={"display_name": "Ama", "email": "ama-log@example.org",
                                                 "password": PASSWORD, "csrf_token": csrf(client, "/signup")})
        assert response.status_code == 303
        response = client.post("/reset", data={"email": "ama-log@example.org", "csrf_token": csrf(client, "/reset")})
        assert response.status_code == 303
        maintainer = person(session, "maintainer-log@example.org")
        odk = session.query(MemberProject).filter_by(slug="odk").one()
        session.add(ProjectMaintainer(project=odk, user=maintainer, granted_by="test"))
        inviter = as_user(app, maintainer)
        response = inviter.post("/projects/odk/maintainers/invite", data={
            "csrf_token": csrf(inviter, "/projects/odk/maintainers"), "email": "kofi-log@example.org"})
        assert response.status_code == 303
    # The three e-mails were handled by the log transport: each is named, none shows its link.
    for to in ("ama-log@example.org", "kofi-log@example.org"):
        assert f"e-mail to {to} not sent" in caplog.text
    assert caplog.text.count("e-mail to ama-log@example.org not sent") == 2
    assert not TOKEN_LINK.search(caplog.text), caplog.text


def test_reset_and_verification_jobs_in_redis_carry_row_ids_only(client, session, rq_redis):
    client.post("/signup", data={"display_name": "Ama", "email": "ama-redis@example.org",
                                 "password": PASSWORD, "csrf_token": csrf(client, "/signup")})
    client.post("/reset", data={"email": "ama-redis@example.org", "csrf_token": csrf(client, "/reset")})
    jobs = Queue("notifications", connection=rq_redis).jobs
    assert len(jobs) == 2
    assert all(job.func_name == "jobs.notifications.send_outbox_message" and len(job.args) == 1
               and isinstance(job.args[0], int) and not job.kwargs for job in jobs)
    stored = b"".join(rq_redis.dump(key) or b"" for key in rq_redis.keys("*"))
    assert b"ama-redis@example.org" not in stored
    assert not TOKEN_LINK.search(stored.decode("latin-1"))
