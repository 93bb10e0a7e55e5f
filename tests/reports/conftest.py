"""Fixtures of the report tests."""
import pytest

from tests.payouts.helpers import World
from tests.reports.helpers import Year


@pytest.fixture
def world(session, client):
    return World(session, client)


@pytest.fixture
def year(world):
    return Year(world)
