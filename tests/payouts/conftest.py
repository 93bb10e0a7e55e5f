"""Fixtures of the payout tests."""
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.conftest import make_app
from tests.payouts.helpers import World


@pytest.fixture
def world(session, client):
    return World(session, client)


@pytest.fixture
def notices_sent(monkeypatch):
    """Every notice queued, as (subject, kind, object id)."""
    sent = []
    from marketplace import notices

    monkeypatch.setattr(notices, "_queue", lambda subject, kind, object_id: sent.append((subject, kind, object_id)))
    return sent


@pytest.fixture
def race_app(database_url):
    """An app on its own PostgreSQL database (built by the migrations), so both sessions commit for real."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL or start a server at 127.0.0.1:5432")
    url = sa.make_url(database_url).set(database="backlog_commons_payout_race")
    admin = sa.create_engine(sa.make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    app = make_app(url.render_as_string(hide_password=False), PAYOUT_DISPUTE_WINDOW_DAYS=0)
    with app.app_context():
        upgrade()
    yield app
    from marketplace.extensions import db

    with app.app_context():
        db.engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()
