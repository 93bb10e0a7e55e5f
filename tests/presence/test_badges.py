"""Bounty badges: the right state, escaped text, a width from the text, ETag and 304 (issue 22)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from marketplace.backlog.models import BacklogItem
from marketplace.payouts import service as payouts
from marketplace.presence.badges import PADDING, render_badge, text_width
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW

SVG = "{http://www.w3.org/2000/svg}"


def texts(response) -> list[str]:
    root = ET.fromstring(response.get_data())
    return [t.text for t in root.iter(f"{SVG}text") if t.get("aria-hidden") is None]


def badge(client, item) -> list[str]:
    response = client.get(f"/items/{item.id}/badge.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    return texts(response)


def test_an_item_badge_follows_the_bounty_open_claimed_solved_paid(world, session, client):
    item = world.issue(601)
    assert badge(client, item) == ["bounty", "open, no bounty yet"]
    world.fund(item, 12000)
    session.commit()
    assert badge(client, item) == ["bounty", "$120"]
    ama = world.implementor("ama@example.org", github_id=6001)
    world.claim(item, ama)
    session.commit()
    assert badge(client, item) == ["bounty", "$120 · claimed"]
    world.pull(701, "Fixes #601", author_id=6001, merged=True)
    assert badge(client, item) == ["bounty", "$120 · solved"]
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    session.commit()
    assert badge(client, item) == ["bounty", "$120 · paid"]


def test_an_item_closed_as_not_planned_says_closed_without_the_work(world, session, client):
    item = world.issue(602)
    item.state_reason = "not_planned"
    from marketplace.backlog.models import ItemState

    item.state = ItemState.closed
    session.commit()
    response = client.get(f"/items/{item.id}/badge.svg")
    assert texts(response) == ["bounty", "closed without the work"]
    assert 'fill="#5f6368"' in response.get_data(as_text=True)


def test_a_hidden_item_has_no_badge(world, session, client):
    item = world.issue(603)
    session.get(BacklogItem, item.id).hidden = True
    session.commit()
    assert client.get(f"/items/{item.id}/badge.svg").status_code == 404


def test_a_project_badge_sums_its_open_bounties(world, session, client):
    first, second = world.issue(604), world.issue(605)
    world.fund(first, 100000)
    world.fund(second, 24000)
    session.commit()
    response = client.get(f"/projects/{world.project.slug}/badge.svg")
    label, message = texts(response)
    assert label == "open bounties" and message.startswith("$")
    amount = int(message.split(" + ")[0].strip("$").replace(",", ""))
    assert amount >= 1240  # these two, and whatever the seed already holds on the project
    assert client.get("/projects/no-such-project/badge.svg").status_code == 404


def test_text_is_escaped_and_the_width_comes_from_the_text(world, session, client):
    item = world.issue(606)
    response = client.get(f"/items/{item.id}/badge.svg", query_string={"label": '<script>&"x\'</script>'})
    raw = response.get_data(as_text=True)
    assert "<script>" not in raw and "&lt;script&gt;&amp;" in raw
    assert texts(response)[0] == '<script>&"x\'</script>'  # parses back to the text as given
    short, long = render_badge("a", "b", "#000"), render_badge("a much longer label", "b", "#000")
    width = float(ET.fromstring(short).get("width"))
    assert width == pytest.approx(round(text_width("a") + 2 * PADDING, 1) + round(text_width("b") + 2 * PADDING, 1))
    assert float(ET.fromstring(long).get("width")) > width
    assert text_width("WWW") > text_width("iii")
    assert "\x01" not in render_badge("a\x01b", "c", "#000")  # XML 1.0 cannot hold it


def test_etag_short_cache_and_304(world, session, client):
    item = world.issue(607)
    first = client.get(f"/items/{item.id}/badge.svg")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=120"
    again = client.get(f"/items/{item.id}/badge.svg", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    world.fund(item, 5000)
    session.commit()  # the public data changed: a new ETag and the new badge
    changed = client.get(f"/items/{item.id}/badge.svg", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert texts(changed) == ["bounty", "$50"]
    project = client.get(f"/projects/{world.project.slug}/badge.svg")
    assert client.get(f"/projects/{world.project.slug}/badge.svg",
                      headers={"If-None-Match": project.headers["ETag"]}).status_code == 304


def test_item_and_project_pages_offer_snippets_to_copy(world, session, client):
    item = world.issue(608)
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f"[![Bounty on Backlog Commons](http://localhost/items/{item.id}/badge.svg)]" in page
    assert '<label for="badge-md-item">' in page and '<label for="badge-html-item">' in page
    assert f"&lt;img src=&#34;http://localhost/items/{item.id}/badge.svg&#34;" in page
    project = client.get(f"/projects/{world.project.slug}").get_data(as_text=True)
    assert f"http://localhost/projects/{world.project.slug}/badge.svg" in project
