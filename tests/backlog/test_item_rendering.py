"""The item page shows forge text as the forge does (issue 14): references
link to the forge or to the item here, labels show their emoji, and the
rendered body is cached by (item id, forge updated_at)."""
from datetime import timedelta

from sqlalchemy import select

from marketplace.backlog.item_page import BODY_CACHE
from marketplace.backlog.models import BacklogItem, ItemLabel

NOFOLLOW = 'rel="nofollow ugc noopener"'


def cht_item(session, number: int) -> BacklogItem:
    return session.scalar(select(BacklogItem).where(BacklogItem.number == number))


def test_references_link_to_the_item_here_when_it_is_in_the_backlog(client, session):
    target = cht_item(session, 10109)  # medic/cht-core#10109 is in the seed backlog
    item = cht_item(session, 10720)
    item.body = "Follows #10109 and #1, see medic/cht-android#3 by @garethbowen. Edit setup.py."
    item.forge_updated_at += timedelta(seconds=1)
    session.flush()
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'<a href="http://localhost/items/{target.id}" {NOFOLLOW}>#10109</a>' in page
    assert f'<a href="https://github.com/medic/cht-core/issues/1" {NOFOLLOW}>#1</a>' in page
    assert f'<a href="https://github.com/medic/cht-android/issues/3" {NOFOLLOW}>medic/cht-android#3</a>' in page
    assert f'<a href="https://github.com/garethbowen" {NOFOLLOW}>@garethbowen</a>' in page
    assert "Edit setup.py." in page and "http://setup.py" not in page


def test_labels_show_their_emoji_on_the_list_and_the_item(client, session):
    item = cht_item(session, 10720)
    session.add(ItemLabel(item_id=item.id, name=":bee: pollinator"))
    session.flush()
    assert ">🐝 pollinator</a></li>" in client.get(f"/items/{item.id}").get_data(as_text=True)
    listing = client.get("/", query_string={"label": ":bee: pollinator"}).get_data(as_text=True)
    assert ">🐝 pollinator</a></li>" in listing


def test_the_body_is_rendered_once_per_forge_update(client, session):
    item = cht_item(session, 10720)
    item.body = "- [ ] first :bee:"
    item.forge_updated_at += timedelta(seconds=2)
    session.flush()
    first = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert '<input type="checkbox" disabled> first 🐝' in first
    key = (item.id, item.forge_updated_at, "github.com", "medic", "cht-core")
    cached = BODY_CACHE._entries[key][1]
    client.get(f"/items/{item.id}")
    assert BODY_CACHE._entries[key][1] is cached  # the same rendering, not a new one
    item.body = "- [x] done"
    item.forge_updated_at += timedelta(seconds=1)
    session.flush()
    assert '<input checked type="checkbox" disabled> done' in client.get(f"/items/{item.id}").get_data(as_text=True)


def test_a_strangers_host_header_never_reaches_the_cached_body(app, client, session, monkeypatch):
    # As in production, where SERVER_NAME is unset and TRUSTED_HOSTS may be.
    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    target = cht_item(session, 10109)
    item = cht_item(session, 10720)
    item.body = "Follows #10109."
    item.forge_updated_at += timedelta(seconds=3)
    session.flush()
    # Rendered first for a request naming another site: links here are on PUBLIC_URL, not on that Host.
    poisoned = client.get(f"/items/{item.id}", headers={"Host": "evil.example"}).get_data(as_text=True)
    assert "evil.example" not in poisoned
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'<a href="http://localhost/items/{target.id}" {NOFOLLOW}>#10109</a>' in page


def test_a_renamed_repository_renders_its_references_again(client, session):
    item = cht_item(session, 10720)
    item.body = "See #1."
    item.forge_updated_at += timedelta(seconds=4)
    session.flush()
    assert "https://github.com/medic/cht-core/issues/1" in client.get(f"/items/{item.id}").get_data(as_text=True)
    item.repository.owner = "medic-renamed"
    session.flush()
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'<a href="https://github.com/medic-renamed/cht-core/issues/1" {NOFOLLOW}>#1</a>' in page
