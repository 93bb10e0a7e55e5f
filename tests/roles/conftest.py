"""Fixtures of issue 20's tests: the payout tests' world (a project with a 10% fee)."""
import pytest

from tests.payouts.helpers import World


@pytest.fixture
def world(session, client):
    return World(session, client)
