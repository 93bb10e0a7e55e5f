"""Headers and hosts (issue 23): HSTS when the public address is https,
``Cache-Control: no-store`` on private pages and for signed-in people, and
error pages that answer a Host header no URL can be built for."""
from __future__ import annotations

import pytest

from tests.accounts.helpers import as_user, person
from tests.conftest import make_app


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example.org"])
def test_a_host_no_url_can_be_built_for_gets_a_plain_400_not_a_500(database_url, host):
    app = make_app(database_url, SERVER_NAME=None)
    client = app.test_client()
    for path in ("/", "/nothing-here"):
        response = client.get(path, headers={"Host": host})
        assert (response.status_code, response.mimetype) == (400, "text/plain")
        assert "could not be understood" in response.get_data(as_text=True)


def test_hsts_only_when_the_public_address_is_https(database_url):
    https = make_app(database_url, PUBLIC_URL="https://commons.example.org").test_client()
    assert https.get("/about").headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    plain = make_app(database_url, PUBLIC_URL="http://localhost").test_client()
    assert "Strict-Transport-Security" not in plain.get("/about").headers


def test_private_pages_and_signed_in_answers_are_not_stored(app, client, session):
    assert client.get("/login").headers["Cache-Control"] == "private, no-store"
    assert "no-store" not in client.get("/about").headers.get("Cache-Control", "")
    signed_in = as_user(app, person(session, "cache@example.org"))
    assert signed_in.get("/account").headers["Cache-Control"] == "private, no-store"
    assert signed_in.get("/about").headers["Cache-Control"] == "private, no-store"
    assert "no-store" not in signed_in.get("/static/site.css").headers.get("Cache-Control", "")
