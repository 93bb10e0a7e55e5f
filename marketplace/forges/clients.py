"""Choosing the API client of a repository's forge from configuration."""
from __future__ import annotations

from flask import current_app

from marketplace.forges.github import GitHubClient
from marketplace.forges.github_app import installation_token
from marketplace.forges.gitlab import GitLabClient
from marketplace.forges.models import ForgeKind, Repository


def _mapping(value: str | None) -> dict[str, str]:
    """``"a=x,b=y"`` as {"a": "x", "b": "y"}."""
    pairs = (part.split("=", 1) for part in (value or "").split(",") if "=" in part)
    return {key.strip(): val.strip() for key, val in pairs}


def client_for(repo: Repository):
    """The API client for ``repo``.

    GitHub: ``GITHUB_API_URL`` (default https://api.github.com) with an
    installation token of the GitHub App (``GITHUB_APP_ID`` and its private key)
    when the repository belongs to an installation, else ``GITHUB_TOKEN``.
    GitLab: ``GITLAB_API_URLS`` (``host=url,…``; default
    ``https://{host}/api/v4``) with the token of ``GITLAB_TOKENS``
    (``host/owner/name=token,…``) for this repository, else ``GITLAB_TOKEN``.
    """
    config = current_app.config
    if repo.forge is ForgeKind.github:
        token = config.get("GITHUB_TOKEN")
        private_key = github_app_private_key()
        if repo.installation_id and config.get("GITHUB_APP_ID") and private_key:
            token = installation_token(config["GITHUB_API_URL"], config["GITHUB_APP_ID"], private_key,
                                       repo.installation_id)
        return GitHubClient(config["GITHUB_API_URL"], token)
    base = gitlab_api_url(repo.host)
    tokens = _mapping(config.get("GITLAB_TOKENS"))
    token = tokens.get(f"{repo.host}/{repo.owner}/{repo.name}") or config.get("GITLAB_TOKEN")
    return GitLabClient(base, token)


def gitlab_api_url(host: str) -> str:
    """The GitLab REST base of ``host``: from ``GITLAB_API_URLS`` (``host=url,…``), else ``https://{host}/api/v4``."""
    return _mapping(current_app.config.get("GITLAB_API_URLS")).get(host, f"https://{host}/api/v4")


def github_app_private_key() -> str | None:
    """The App's PEM key from ``GITHUB_APP_PRIVATE_KEY`` or the file ``GITHUB_APP_PRIVATE_KEY_FILE``."""
    config = current_app.config
    if config.get("GITHUB_APP_PRIVATE_KEY"):
        return config["GITHUB_APP_PRIVATE_KEY"].replace("\\n", "\n")
    path = config.get("GITHUB_APP_PRIVATE_KEY_FILE")
    if path:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    return None
