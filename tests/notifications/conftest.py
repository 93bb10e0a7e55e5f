"""Fixtures of the outbox tests."""
import pytest
import sqlalchemy as sa

from tests.races import race_database_app


@pytest.fixture
def race_app(database_url, tmp_path):
    """An app on its own PostgreSQL database, its mail written to a Maildir, so
    that two sessions commit for real and every message sent can be counted."""
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_outbox_race") as app:
        app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "mail")
        yield app


@pytest.fixture
def maildir_app(app, tmp_path):
    """The test app writing its mail to a Maildir in ``tmp_path`` during the test."""
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "mail")
    yield app
    app.config["MAIL_OUTBOX_DIR"] = None
