"""HTTP caching of anonymous public pages (issue 15): ETag and 304, a fresh
page once the data changes, the response cache, and no signed-in page shared."""
import pytest
from sqlalchemy import event, select

from marketplace.backlog.models import BacklogItem
from marketplace.extensions import db
from marketplace.httpcache.service import (
    cache_config,
    fragment_cache,
    fragment_cache_config,
    response_cache,
)
from tests.accounts.helpers import signup


@pytest.fixture
def page_cache(app, session):
    """The in-process response cache, emptied, for this test."""
    response_cache.init_app(app, config={"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60})
    response_cache.clear()
    yield response_cache
    response_cache.clear()
    response_cache.init_app(app, config=cache_config(app.config))


def count_statements(client, url: str, **kwargs) -> tuple[object, int]:
    seen = []

    def listener(*args):
        seen.append(args[2])

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.get(url, **kwargs)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return response, len(seen)


def an_item(session) -> BacklogItem:
    return session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))


@pytest.mark.parametrize("url", ["/", "/?q=shared+device", "/api/v1/items?sdg=3", "/transparency"])
def test_an_unchanged_page_is_304_on_its_etag(client, url):
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "public, max-age=30"
    assert {"Cookie", "Accept-Language"} <= set(first.vary)
    assert first.last_modified is not None
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_changed_item_gets_a_new_etag_and_a_fresh_page(client, session, page_cache):
    item = an_item(session)
    url = f"/items/{item.id}"
    first = client.get(url)
    assert item.title in first.get_data(as_text=True)
    item.title = "A title changed on the forge"
    session.commit()
    second = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    assert "A title changed on the forge" in second.get_data(as_text=True)
    listing = client.get("/?q=changed+forge").get_data(as_text=True)
    assert "A title changed on the forge" in listing


def test_a_warm_page_is_served_from_the_cache_without_its_queries(client, session, page_cache):
    cold, cold_statements = count_statements(client, "/api/v1/items?sdg=3")
    warm, warm_statements = count_statements(client, "/api/v1/items?sdg=3")
    assert warm.get_json() == cold.get_json()
    assert cold_statements >= 3
    assert warm_statements <= 1  # the data version (tests read it every time)
    # The same query in another order is the same page.
    _, reordered = count_statements(client, "/api/v1/items?sdg=3")
    assert reordered <= 1


def test_a_signed_in_page_is_never_stored_nor_served_to_someone_else(client, app, session, page_cache):
    item = an_item(session)
    url = f"/items/{item.id}"
    signup(client, "funder@example.org", "Ama Funder")
    mine = client.get(url)
    assert mine.status_code == 200
    assert "Sign out" in mine.get_data(as_text=True)
    assert "public" not in mine.headers.get("Cache-Control", "")
    assert "private" in mine.headers["Cache-Control"]
    assert "Cookie" in mine.vary
    assert "ETag" not in mine.headers
    stranger = app.test_client()
    theirs = stranger.get(url)
    assert theirs.status_code == 200
    assert "Sign out" not in theirs.get_data(as_text=True)
    assert "Ama Funder" not in theirs.get_data(as_text=True)
    assert theirs.headers["Cache-Control"] == "public, max-age=30"
    # And the anonymous page stored meanwhile is not what the signed-in person gets.
    assert "Sign out" in client.get(url).get_data(as_text=True)


def test_flashed_messages_and_error_pages_are_not_cached(client, page_cache):
    bad = client.get("/?sdg=99")
    assert bad.status_code == 400 and "public" not in bad.headers.get("Cache-Control", "")
    assert "ETag" not in bad.headers


def test_cache_config_uses_redis_when_there_is_one():
    assert cache_config({"REDIS_URL": "redis://r:6379/1"})["CACHE_TYPE"] == "RedisCache"
    assert cache_config({"REDIS_URL": "redis://r:6379/1"})["CACHE_REDIS_URL"] == "redis://r:6379/1"
    assert cache_config({"REDIS_URL": None})["CACHE_TYPE"] == "SimpleCache"
    assert cache_config({"REDIS_URL": None, "HTTP_CACHE_TYPE": "NullCache"})["CACHE_TYPE"] == "NullCache"


def test_the_response_cache_on_redis_serves_a_warm_page(client, app, session, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    response_cache.init_app(app, config=cache_config({"REDIS_URL": redis_url}))
    try:
        cold, cold_statements = count_statements(client, "/?sdg=3")
        warm, warm_statements = count_statements(client, "/?sdg=3")
        assert warm.data == cold.data and warm_statements <= 1 < cold_statements
        assert any(key.startswith(b"bc:page:") for key in redis.Redis.from_url(redis_url).keys())
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        response_cache.init_app(app, config=cache_config(app.config))


def test_the_worker_keeps_hot_pages_in_memory_in_front_of_the_shared_cache(client, app, session, page_cache):
    app.config["HTTP_CACHE_TYPE"] = "SimpleCache"
    try:
        first = client.get("/api/v1/items?label=bug")
        page_cache.clear()  # the shared cache loses it; this worker still has it
        again, statements = count_statements(client, "/api/v1/items?label=bug")
        assert again.data == first.data and statements <= 1
    finally:
        app.config["HTTP_CACHE_TYPE"] = "NullCache"
        from marketplace.httpcache import service
        service._local.clear()


def test_project_choices_are_remembered_until_the_data_changes(client, app, session):
    from marketplace.projects.models import MemberProject

    seen = []

    def listener(*args):
        seen.append(args[2])

    app.config["HTTP_CACHE_FRAGMENTS"] = True
    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        client.get("/")
        seen.clear()
        page = client.get("/?project=odk").get_data(as_text=True)
        assert not [s for s in seen if "EXISTS" in s and "member_project.slug" in s]
        assert '<option value="odk" selected>' in page
        project = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
        project.name = "Open Data Kit (renamed)"
        session.commit()
        seen.clear()
        page = client.get("/").get_data(as_text=True)
        assert [s for s in seen if "EXISTS" in s and "member_project.slug" in s]
        assert ">Open Data Kit (renamed)</option>" in page
    finally:
        event.remove(engine, "before_cursor_execute", listener)
        app.config["HTTP_CACHE_FRAGMENTS"] = False


def test_the_backlog_page_with_its_language_links_is_shared_per_language(client, app, session, page_cache):
    """The footer's language choice is plain links for visitors (a form's CSRF
    token would make every page unshareable); each language is its own entry."""
    cold, cold_statements = count_statements(client, "/")
    assert cold.headers["Cache-Control"] == "public, max-age=30"
    html = cold.get_data(as_text=True)
    assert 'name="csrf_token"' not in html and 'hreflang="fr"' in html and "/?lang=fr" in html
    warm, warm_statements = count_statements(client, "/")
    assert warm.data == cold.data and warm_statements <= 1
    other = app.test_client()
    other.set_cookie("lang", "fr")
    french = other.get("/")
    assert french.status_code == 200 and '<html lang="fr">' in french.get_data(as_text=True)
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
    # The link itself remembers the choice (a cookie), so its answer is not shared.
    chosen = app.test_client().get("/?lang=es")
    assert "lang=es" in chosen.headers.get("Set-Cookie", "") and "private" in chosen.headers["Cache-Control"]


def test_fragment_store_is_redis_only_when_there_is_one_and_fragments_are_on():
    assert fragment_cache_config({"REDIS_URL": "redis://r:6379/1"})["CACHE_TYPE"] == "RedisCache"
    assert fragment_cache_config({"REDIS_URL": "redis://r:6379/1", "HTTP_CACHE_TYPE": "NullCache"})[
        "CACHE_TYPE"] == "RedisCache"  # the response cache off still shares rendered parts
    assert fragment_cache_config({"REDIS_URL": "redis://r:6379/1", "HTTP_CACHE_FRAGMENTS": False})[
        "CACHE_TYPE"] == "NullCache"
    assert fragment_cache_config({"REDIS_URL": None})["CACHE_TYPE"] == "NullCache"


def test_a_body_rendered_by_one_worker_is_not_rendered_again_by_another(client, app, session, redis_url,
                                                                         monkeypatch):
    import redis

    from marketplace.backlog import item_page

    redis.Redis.from_url(redis_url).flushdb()
    fragment_cache.init_app(app, config=fragment_cache_config({"REDIS_URL": redis_url}))
    try:
        item = an_item(session)
        item.body = "Shared **once**."
        session.flush()
        first = client.get(f"/items/{item.id}").get_data(as_text=True)
        assert "Shared <strong>once</strong>." in first
        # Another worker: its own memory is empty, and it must not render again.
        item_page.BODY_CACHE._entries.clear()
        monkeypatch.setattr(item_page, "render_markdown", lambda *args, **kwargs: pytest.fail("rendered again"))
        assert "Shared <strong>once</strong>." in client.get(f"/items/{item.id}").get_data(as_text=True)
        # A new body is a new key: rendered (here: refused) rather than served stale.
        item.body = "Changed."
        session.flush()
        item_page.BODY_CACHE._entries.clear()
        with pytest.raises(pytest.fail.Exception):
            client.get(f"/items/{item.id}")
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        fragment_cache.init_app(app, config=fragment_cache_config(app.config))
