"""Fixtures of the report tests."""
import pytest

from tests.payouts.helpers import World
from tests.reports.helpers import Year


@pytest.fixture
def world(session, client):
    return World(session, client)


@pytest.fixture
def year(world):
    # Stored reports committed by an earlier test that served the app for real
    # (a browser test) must not stand in for this year's (rolled back with the test).
    from sqlalchemy import delete

    from marketplace.reports.models import ReportSnapshot

    world.session.execute(delete(ReportSnapshot))
    return Year(world)
