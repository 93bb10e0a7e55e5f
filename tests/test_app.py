import pytest

from marketplace import create_app
from marketplace.config import normalise_database_url


def test_secret_key_is_required_outside_debug_and_testing(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_configuration_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.internal:5432/commons")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    monkeypatch.setenv("PORT", "8080")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.internal:5432/commons"
    assert app.config["REDIS_URL"] == "redis://cache.internal:6379/0"
    assert app.config["PORT"] == 8080


def test_default_database_is_sqlite_under_instance(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app({"TESTING": True})
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("/instance/backlog.sqlite3")
    assert app.config["REDIS_URL"] is None


@pytest.mark.parametrize(
    "given, expected",
    [
        ("postgresql://a@b/c", "postgresql+psycopg://a@b/c"),
        ("postgresql+psycopg://a@b/c", "postgresql+psycopg://a@b/c"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_select_psycopg(given, expected):
    assert normalise_database_url(given) == expected


def test_empty_locale_list_falls_back_to_english(monkeypatch):
    monkeypatch.setenv("SUPPORTED_LOCALES", ",")
    assert create_app({"TESTING": True}).config["SUPPORTED_LOCALES"] == ["en"]


@pytest.mark.parametrize("value", ["0", "101", "ten", "-5"])
def test_page_size_out_of_range_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("BACKLOG_PAGE_SIZE", value)
    with pytest.raises(RuntimeError, match="BACKLOG_PAGE_SIZE must be a whole number from 1 to 100"):
        create_app({"TESTING": True})


def test_trusted_hosts_refuse_a_foreign_host_header(monkeypatch, database_url):
    monkeypatch.setenv("TRUSTED_HOSTS", "commons.example.org")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    client = app.test_client()
    assert client.get("/about", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/about", headers={"Host": "commons.example.org"}).status_code == 200


@pytest.mark.parametrize("method, code, expected", [
    ("POST", None, 303), ("DELETE", None, 303), ("GET", None, 302), ("HEAD", None, 302),
    ("POST", 307, 307), ("POST", 301, 301), ("GET", 303, 303)])
def test_a_redirect_after_a_post_is_303_see_other_and_one_after_a_get_stays_302(app, method, code, expected):
    from flask import redirect

    with app.test_request_context("/account", method=method):
        response = redirect("/login") if code is None else redirect("/login", code)
    assert (response.status_code, response.location) == (expected, "/login")


def test_signing_in_answers_303_and_an_anonymous_page_302(app, session):
    from tests.accounts.helpers import PASSWORD, csrf, signup

    client = app.test_client()
    assert client.get("/account").status_code == 302  # to sign in: a GET stays 302
    signup(client, "see-other@example.org", sign_in=False)
    response = client.post("/login", data={"email": "see-other@example.org", "password": PASSWORD,
                                           "csrf_token": csrf(client, "/login")})
    assert (response.status_code, response.location) == (303, "/")
