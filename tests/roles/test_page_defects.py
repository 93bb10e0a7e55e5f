"""Defects of issue 20 that every role meets: wording, countries, flash markup, the 429 page."""
from __future__ import annotations

import re

from marketplace.i18n import country_codes
from tests.accounts.helpers import csrf, login, signup


def test_country_list_offers_the_249_iso_3166_countries_and_no_region_or_pseudo_locale(client, session):
    signup(client, "ama@example.org")
    page = client.get("/account/profile").get_data(as_text=True)
    select = page[page.index('name="country"'):]
    select = select[:select.index("</select>")]
    offered = set(re.findall(r'<option[^>]*value="([A-Z]{2})"', select))
    assert len(offered) == 249 and offered == country_codes()
    for code, name in [("EU", "European Union"), ("EZ", "Eurozone"), ("UN", "United Nations"),
                       ("QO", "Outlying Oceania"), ("XA", "Pseudo-Accents"), ("XB", "Pseudo-Bidi")]:
        assert code not in offered and name not in select
    assert {"GH", "KE", "US", "AQ", "PS"} <= offered


def test_profile_refuses_a_region_code_as_country(client, session):
    signup(client, "ama@example.org")
    token = csrf(client, "/account/profile")
    response = client.post("/account/profile", data={"csrf_token": token, "country": "EU", "organisation_id": ""})
    assert response.status_code == 400


def test_a_page_behind_sign_in_says_please_sign_in(client, session):
    response = client.get("/account", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Please sign in to see this page." in page
    assert "log in" not in page.lower()


def test_flash_messages_are_paragraphs_with_allowed_roles_not_list_items(client, session):
    client.get("/account")  # not signed in: flashed "please sign in", sent to /login
    page = client.get("/login").get_data(as_text=True)
    flashes = page[page.index('<div class="flashes">'):]
    flashes = flashes[:flashes.index("</div>")]
    assert '<p role="status">Please sign in to see this page.</p>' in flashes
    assert "<li" not in flashes and "<ul" not in flashes


def test_a_refused_flash_is_shown_as_an_alert_in_the_error_style(app, client, session):
    with app.test_request_context():
        from flask import flash, render_template_string

        flash("Nothing was changed.", "error")
        flash("Saved.")
        html = render_template_string('{% extends "base.html" %}')
    assert '<p class="flash-error" role="alert">Nothing was changed.</p>' in html
    assert '<p role="status">Saved.</p>' in html


def test_429_page_says_what_happened_and_when_to_try_again(app, session):
    # An hourly window: a minute's fixed window could reset between the requests.
    app.config["RATELIMIT_AUTH"] = "2 per hour"
    try:
        client = app.test_client()
        responses = [login(client, "nobody@example.org", "wrong password!!") for _ in range(3)]
    finally:
        app.config["RATELIMIT_AUTH"] = "10000 per minute"
    last = responses[-1]
    assert [r.status_code for r in responses] == [400, 400, 429]
    page = last.get_data(as_text=True)
    match = re.search(r"Too many attempts came from your address in a short time, so this one was not done\. "
                      r"Nothing was changed\. Try again in (\d+) (seconds?|minutes?)\.", page)
    assert match, page
    wait = int(match.group(1)) * (60 if match.group(2).startswith("minute") else 1)
    assert 1 <= wait <= 3660  # rounded up to whole minutes
    assert abs(int(last.headers["Retry-After"]) - wait) <= 61
