"""Fixtures of the payout tests."""
import pytest
import sqlalchemy as sa

from tests.payouts.helpers import World
from tests.races import race_database_app


@pytest.fixture
def world(session, client):
    return World(session, client)


@pytest.fixture
def notices_sent(monkeypatch):
    """Every notice queued, as (subject, kind, object id)."""
    sent = []
    from marketplace.notifications import notices

    monkeypatch.setattr(notices, "_queue",
                        lambda subject, kind, object_id, figures=None: sent.append((subject, kind, object_id)))
    return sent


@pytest.fixture
def race_app(database_url):
    """An app on its own PostgreSQL database (built by the migrations), so both sessions commit for real."""
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_payout_race") as app:
        yield app
