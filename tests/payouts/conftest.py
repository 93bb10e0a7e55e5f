"""Fixtures of the payout tests."""
import pytest

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
