"""Fixtures of the fund tests."""
import pytest

from tests.funds.helpers import FundWorld


@pytest.fixture
def stripe_api(app):
    """Stripe's API answered by the local stand-in (Checkout, Billing, refunds)."""
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    yield server
    app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    server.stop()


@pytest.fixture
def fw(session, client, stripe_api):
    return FundWorld(session, client, stripe_api)
