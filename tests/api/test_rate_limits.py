"""API rate limits per client (issue 15); webhooks are never limited."""
import pytest

from tests.conftest import make_app


@pytest.fixture
def limited_client(database_url, app):
    limited = make_app(database_url, RATELIMIT_API="3 per minute", RATELIMIT_STORAGE_URI="memory://")
    return limited.test_client()


def test_the_api_answers_429_with_retry_after_past_the_limit(limited_client):
    for _ in range(3):
        assert limited_client.get("/api/v1/projects").status_code == 200
    refused = limited_client.get("/api/v1/projects")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"]["status"] == 429
    # Another client (address) has its own allowance.
    other = limited_client.get("/api/v1/projects", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_webhooks_are_exempt(limited_client):
    for _ in range(5):
        # Unsigned: refused by the signature check, never by a limit.
        assert limited_client.post("/webhooks/github", data=b"{}").status_code == 401
