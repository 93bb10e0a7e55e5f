"""Fixtures of the training tests (issue 19)."""
import pytest
import sqlalchemy as sa

from tests.races import race_database_app
from tests.training.helpers import TrainingWorld


@pytest.fixture
def world(session, client):
    return TrainingWorld(session, client)


@pytest.fixture
def race_app(database_url):
    """An app on its own PostgreSQL database (built by the migrations), so both sessions commit for real."""
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_training_race") as app:
        yield app
