"""Fixtures of the pool tests."""
import pytest

from tests.pools.helpers import PoolWorld


@pytest.fixture
def pw(session):
    return PoolWorld()


@pytest.fixture
def stripe_api(app):
    """Refunds of card pledges go to Stripe: the local stand-in answers."""
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    yield server
    app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    server.stop()
