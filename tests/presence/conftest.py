"""Fixtures of the forge presence tests: the payouts' world (a project with a
maintainer and a funder, driven by recorded GitHub deliveries) and a fake GitHub."""
import pytest

from tests.payouts.helpers import World
from tests.presence.helpers import serve_repo


@pytest.fixture
def world(session, client, github_forge):
    serve_repo(github_forge)
    return World(session, client)
