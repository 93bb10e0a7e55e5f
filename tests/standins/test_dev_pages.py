"""The development pages of `make run`: the mail outbox (a newcomer signs up
and verifies from it), the schedule with its "run what is due" button, the
stand-in banner; none of them exist without the stand-ins."""
from __future__ import annotations

import mailbox
import re
from datetime import timedelta

import pytest

from marketplace.notifications.mail import deliver
from marketplace.payouts.service import dispute_window
from marketplace.scheduling.models import ScheduleRun
from tests.accounts.helpers import PASSWORD, csrf
from tests.conftest import make_app


@pytest.fixture(scope="module")
def dev_app(database_url, app, tmp_path_factory):
    """The app as `make run` configures it (stand-ins on, outbox in a temporary Maildir)."""
    outbox = tmp_path_factory.mktemp("outbox")
    return make_app(database_url, STANDINS={"stripe": "http://127.0.0.1:9/dashboard",
                                            "mail": "http://localhost/dev/mail"},
                    MAIL_OUTBOX_DIR=str(outbox / "mail"), SCHEDULE_SKIP=["incremental-sync", "reconciliation"])


@pytest.fixture
def dev_client(dev_app, session):
    box = mailbox.Maildir(dev_app.config["MAIL_OUTBOX_DIR"], create=True)
    box.clear()
    return dev_app.test_client()


def test_a_newcomer_signs_up_and_verifies_from_the_outbox_page(dev_client, dev_app):
    response = dev_client.post("/signup", data={
        "display_name": "Nadia", "email": "nadia@example.org", "password": PASSWORD, "is_funder": "y",
        "csrf_token": csrf(dev_client, "/signup")})
    assert response.status_code == 303  # See Other after the sign-up form (issue 23)
    listing = dev_client.get("/dev/mail").get_data(as_text=True)
    key, subject = re.search(r'<a href="/dev/mail/([^"]+)">([^<]+)</a> — to nadia@example.org', listing).groups()
    assert "Confirm" in subject or "Verify" in subject or "verify" in subject.lower(), subject
    message = dev_client.get(f"/dev/mail/{key}").get_data(as_text=True)
    link = re.search(r'<a href="(http://localhost/verify/[^"]+)">', message).group(1)
    verified = dev_client.get(link.removeprefix("http://localhost"))
    assert verified.status_code == 302
    from marketplace.accounts.service import user_by_email

    assert user_by_email("nadia@example.org").email_verified_at is not None


def test_a_message_body_is_escaped_and_only_its_addresses_become_links(dev_client, dev_app):
    with dev_app.app_context():
        deliver("ana@example.org", "Your <b>payout</b>",
                "See https://example.org/p?a=1&b=2. <script>alert(1)</script>\nDone.")
    box = mailbox.Maildir(dev_app.config["MAIL_OUTBOX_DIR"])
    assert len(box) == 1
    key = next(iter(box.keys()))
    page = dev_client.get(f"/dev/mail/{key}").get_data(as_text=True)
    assert '<a href="https://example.org/p?a=1&amp;b=2">https://example.org/p?a=1&amp;b=2</a>.' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "Your &lt;b&gt;payout&lt;/b&gt;" in page
    assert dev_client.get("/dev/mail/no-such-key").status_code == 404


def test_the_dev_page_lists_the_schedule_and_runs_what_is_due(dev_client, dev_app, session, monkeypatch):
    monkeypatch.setattr("marketplace.scheduling.service.SCHEDULE_MODULE", "tests.scheduling.test_schedule.ENTRIES")
    page = dev_client.get("/dev/").get_data(as_text=True)
    assert "every-ten-minutes" in page and "<code>7 * * * *</code>" in page
    response = dev_client.post("/dev/run-due", data={"csrf_token": csrf(dev_client, "/dev/")})
    assert response.status_code == 303
    assert "Ran 2 due jobs." in dev_client.get("/dev/").get_data(as_text=True)
    assert session.get(ScheduleRun, "every-ten-minutes").outcome == "ok"
    again = dev_client.post("/dev/run-due", data={"csrf_token": csrf(dev_client, "/dev/")})
    assert again.status_code == 303
    assert "Nothing was due." in dev_client.get("/dev/").get_data(as_text=True)
    assert dev_client.post("/dev/run-due").status_code == 400  # no CSRF token: refused


def test_every_page_says_the_services_are_stood_in_for(dev_client):
    page = dev_client.get("/").get_data(as_text=True)
    assert "Local stand-ins." in page and 'href="/dev/"' in page


def test_without_the_stand_ins_there_is_no_dev_page_no_banner_and_mail_goes_to_the_log(client, app, caplog):
    assert client.get("/dev/mail").status_code == 404
    assert client.get("/dev/").status_code == 404
    assert "Local stand-ins." not in client.get("/").get_data(as_text=True)
    with app.app_context(), caplog.at_level("INFO"):
        deliver("ana@example.org", "Hello", "Body https://example.org/verify/secret")
    assert "e-mail to ana@example.org not sent (no MAIL_SERVER, no MAIL_OUTBOX_DIR): Hello" in caplog.text
    assert "/verify/" not in caplog.text  # the body is never logged


def test_the_dispute_window_is_in_minutes_when_set_else_in_days(app):
    before = app.config["PAYOUT_DISPUTE_WINDOW_MINUTES"], app.config["PAYOUT_DISPUTE_WINDOW_DAYS"]
    with app.app_context():
        app.config.update(PAYOUT_DISPUTE_WINDOW_MINUTES=2, PAYOUT_DISPUTE_WINDOW_DAYS=7)
        try:
            assert dispute_window() == timedelta(minutes=2)
            app.config["PAYOUT_DISPUTE_WINDOW_MINUTES"] = None
            assert dispute_window() == timedelta(days=7)
            app.config["PAYOUT_DISPUTE_WINDOW_MINUTES"] = 0
            assert dispute_window() == timedelta(0)
        finally:
            app.config["PAYOUT_DISPUTE_WINDOW_MINUTES"], app.config["PAYOUT_DISPUTE_WINDOW_DAYS"] = before


def test_a_signed_in_person_makes_themself_admin_of_the_local_site(dev_client, session):
    from marketplace.accounts.service import user_by_email
    from tests.accounts.helpers import signup

    signed_out = dev_client.post("/dev/make-me-admin", data={"csrf_token": csrf(dev_client, "/dev/")})
    assert signed_out.status_code == 303 and "/login" in signed_out.location
    signup(dev_client, "host@example.org", "Host")
    assert "Make me an admin of this local site" in dev_client.get("/dev/").get_data(as_text=True)
    response = dev_client.post("/dev/make-me-admin", data={"csrf_token": csrf(dev_client, "/dev/")})
    assert response.status_code == 303 and response.location.endswith("/admin/")
    assert user_by_email("host@example.org").is_admin
    assert "You are an admin of this local site." in dev_client.get("/dev/").get_data(as_text=True)


def test_without_the_stand_ins_nobody_can_make_themself_admin(client):
    assert client.post("/dev/make-me-admin").status_code == 404
