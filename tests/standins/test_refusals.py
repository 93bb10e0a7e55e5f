"""The stand-ins never start, and the app never runs with them, on a production setting:
a live Stripe key, a real OAuth client, or FLASK_DEBUG off with an https PUBLIC_URL."""
from __future__ import annotations

import pytest

from marketplace.standins import LOCAL_OAUTH_CLIENT_ID, refusals
from marketplace.standins.serve import start
from tests.conftest import make_app

PRODUCTION_SETTINGS = {
    "live Stripe key": {"STRIPE_API_KEY": "sk_live_51Hxxxxxxxx"},
    "live restricted Stripe key": {"STRIPE_API_KEY": "rk_live_51Hxxxxxxxx"},
    "real GitHub OAuth client": {"GITHUB_OAUTH_CLIENT_ID": "Iv1.8a61f9b3a7aba766"},
    "real GitLab OAuth client": {"GITLAB_OAUTH_CLIENT_ID": "4d6c0f7a2b"},
    "https without debug": {"DEBUG": False, "PUBLIC_URL": "https://commons.example.org"},
}
LAPTOP = {"SECRET_KEY": "a-laptop-secret", "DEBUG": True, "PUBLIC_URL": "http://127.0.0.1:5000",
          "SQLALCHEMY_DATABASE_URI": "sqlite:///unused.sqlite3"}


@pytest.mark.parametrize("setting", PRODUCTION_SETTINGS.values(), ids=PRODUCTION_SETTINGS.keys())
def test_the_runner_refuses_to_start_the_standins_on_a_production_setting(setting, tmp_path):
    with pytest.raises(SystemExit, match="cannot start here"):
        start(dict(LAPTOP, **setting), "http://127.0.0.1:5000", tmp_path / "standins")
    assert not (tmp_path / "standins").exists()  # nothing started, nothing written


@pytest.mark.parametrize("setting", PRODUCTION_SETTINGS.values(), ids=PRODUCTION_SETTINGS.keys())
def test_the_app_refuses_to_run_with_the_standins_on_a_production_setting(setting, database_url):
    with pytest.raises(RuntimeError, match="cannot run here"):
        make_app(database_url, STANDINS={"mail": "http://127.0.0.1:5000/dev/mail"}, **setting)


def test_a_laptop_setting_with_the_local_oauth_client_is_allowed():
    assert refusals(dict(LAPTOP, GITHUB_OAUTH_CLIENT_ID=LOCAL_OAUTH_CLIENT_ID, STRIPE_API_KEY="sk_test_local",
                         PUBLIC_URL="https://127.0.0.1:5000", DEBUG=True)) == []
    assert refusals(dict(LAPTOP, DEBUG=False, PUBLIC_URL="http://127.0.0.1:5000")) == []


def test_the_runner_starts_the_local_forge_and_points_the_app_at_it(tmp_path):
    standins = start(dict(LAPTOP), "http://127.0.0.1:5000", tmp_path / "standins")
    try:
        overrides = standins.overrides
        assert overrides["GITHUB_OAUTH_CLIENT_ID"] == LOCAL_OAUTH_CLIENT_ID
        assert overrides["GITHUB_OAUTH_URL"] == overrides["GITHUB_API_URL"] == standins.links["forge"]
        assert overrides["GITHUB_WEBHOOK_SECRET"]
        # Nothing to sync from while the forge is stood in (and no GITHUB_TOKEN is set).
        assert overrides["SCHEDULE_SKIP"] == ["incremental-sync", "reconciliation"]
        assert overrides["STANDINS"]["forge"] == standins.links["forge"]
    finally:
        standins.stop()
    assert (tmp_path / "standins" / "local-forge.json").exists()


def test_a_real_github_token_keeps_the_sync_running_beside_the_local_forge(tmp_path):
    standins = start(dict(LAPTOP, GITHUB_TOKEN="ghp_real"), "http://127.0.0.1:5000", tmp_path / "standins")
    try:
        assert "SCHEDULE_SKIP" not in standins.overrides
        assert "forge" in standins.links
    finally:
        standins.stop()
