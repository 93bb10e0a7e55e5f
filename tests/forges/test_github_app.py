"""GitHub App installation tokens: bought with a signed JWT, cached, used by sync."""
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jobs.sync import sync_repository
from marketplace.forges.github_app import clear_cache
from tests.conftest import make_repository
from tests.forges.fake_forge import github_issue


@pytest.fixture
def app_key(app, github_forge):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    github_forge.app_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    github_forge.app_id = 1234
    app.config.update(GITHUB_APP_ID="1234", GITHUB_APP_PRIVATE_KEY=pem)
    clear_cache()
    yield pem
    app.config.update(GITHUB_APP_ID=None, GITHUB_APP_PRIVATE_KEY=None)
    clear_cache()


def test_sync_of_an_installed_repository_uses_the_installation_token(session, github_forge, app_key):
    repo = make_repository("org-a", "repo-x")
    repo.installation_id = 555
    github_forge.repos[("org-a", "repo-x")] = {
        "id": 77, "default_branch": "main", "pulls": [],
        "issues": [github_issue("org-a", "repo-x", 1, updated_at="2026-01-01T00:00:00Z")],
    }
    sync_repository(repo.id, full=True)
    sync_repository(repo.id)
    posts = [r for r in github_forge.received if r.method == "POST"]
    assert [(r.path, r.status) for r in posts] == [("/app/installations/555/access_tokens", 201)]  # cached after
    gets = [r for r in github_forge.received if r.method == "GET"]
    assert {r.headers["Authorization"] for r in gets} == {"Bearer ghs_installation_555"}


def test_a_repository_outside_any_installation_uses_the_plain_token(app, session, github_forge, app_key):
    repo = make_repository("org-a", "repo-x")
    github_forge.repos[("org-a", "repo-x")] = {"id": 77, "default_branch": "main", "pulls": [], "issues": []}
    app.config["GITHUB_TOKEN"] = "plain-token"
    try:
        sync_repository(repo.id, full=True)
    finally:
        app.config["GITHUB_TOKEN"] = None
    assert {r.headers.get("Authorization") for r in github_forge.received} == {"Bearer plain-token"}
