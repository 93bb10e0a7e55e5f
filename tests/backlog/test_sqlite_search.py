"""The embedded default (SQLite with FTS5) searches like PostgreSQL does.

Runs on its own SQLite database whatever backend the rest of the suite uses.
"""
import pytest

from marketplace.extensions import db
from tests.conftest import SEED, make_app


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    from flask_migrate import upgrade

    from marketplace.backlog.snapshot import load_snapshot
    from marketplace.projects.registry import import_registry, load_registry_file

    path = tmp_path_factory.mktemp("sqlite") / "embedded.sqlite3"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade()
        import_registry(load_registry_file(SEED / "dpg" / "registry.json"))
        load_snapshot(SEED / "dpg-issues")
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_fts5_finds_a_recorded_title_word(sqlite_app):
    client = sqlite_app.test_client()
    body = client.get("/api/v1/items?q=shared+device").get_json()
    assert [i["forge"]["number"] for i in body["items"]] == [10720]
    assert client.get("/api/v1/items?q=demo+targets").get_json()["items"][0]["forge"]["number"] == 10109


@pytest.mark.parametrize("q", ['"', "'", "*", "a AND", "NEAR(", "shared OR", "-x", "^", "col:x", "x" * 500])
def test_fts5_syntax_in_the_search_text_is_just_text(sqlite_app, q):
    client = sqlite_app.test_client()
    assert client.get("/api/v1/items", query_string={"q": q}).status_code == 200
    assert client.get("/", query_string={"q": q}).status_code == 200


def test_fts5_index_follows_title_changes(sqlite_app):
    from sqlalchemy import select

    from marketplace.backlog.models import BacklogItem

    with sqlite_app.app_context():
        item = db.session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
        item.title = "Zanzibarqq renamed"
        db.session.commit()
    client = sqlite_app.test_client()
    assert client.get("/api/v1/items?q=zanzibarqq").get_json()["total"] == 1
