"""/healthz and /readyz (issue 23): the process, then its database and Redis;
exempt from rate limits and from the host check, 503 naming what is down."""
from __future__ import annotations

from tests.conftest import make_app


def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_is_ready_with_the_database_and_no_redis_configured(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["database"], body["redis"]) == ("ready", "ok", "not used")
    assert isinstance(body["outbox_waiting"], int)


def test_readyz_names_redis_when_it_is_down(app, client):
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    try:
        response = client.get("/readyz")
    finally:
        app.config["REDIS_URL"] = None
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["down"], body["database"]) == ("not ready", ["redis"], "ok")
    assert body["redis"].startswith("down: ")


def test_readyz_names_the_database_when_it_is_down(database_url):
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:9/nothing")
    with app.test_client() as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["down"] == ["database"]


def test_probes_pass_the_host_check_and_other_pages_do_not(database_url, session):
    app = make_app(database_url, TRUSTED_HOSTS=["commons.example.org"], SERVER_NAME=None)
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "10.0.0.7:8000"}).status_code == 200
    assert client.get("/about", headers={"Host": "10.0.0.7:8000"}).status_code == 400
    assert client.get("/about", headers={"Host": "commons.example.org"}).status_code == 200
