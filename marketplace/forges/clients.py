"""Choosing the API client of a repository's forge from configuration."""
from __future__ import annotations

from flask import current_app

from marketplace.forges.github import GitHubClient
from marketplace.forges.gitlab import GitLabClient
from marketplace.forges.models import ForgeKind, Repository


def _mapping(value: str | None) -> dict[str, str]:
    """``"a=x,b=y"`` as {"a": "x", "b": "y"}."""
    pairs = (part.split("=", 1) for part in (value or "").split(",") if "=" in part)
    return {key.strip(): val.strip() for key, val in pairs}


def client_for(repo: Repository):
    """The API client for ``repo``.

    GitHub: ``GITHUB_API_URL`` (default https://api.github.com) with
    ``GITHUB_TOKEN``. GitLab: ``GITLAB_API_URLS`` (``host=url,…``; default
    ``https://{host}/api/v4``) with the token of ``GITLAB_TOKENS``
    (``host/owner/name=token,…``) for this repository, else ``GITLAB_TOKEN``.
    """
    config = current_app.config
    if repo.forge is ForgeKind.github:
        return GitHubClient(config["GITHUB_API_URL"], config.get("GITHUB_TOKEN"))
    base = _mapping(config.get("GITLAB_API_URLS")).get(repo.host, f"https://{repo.host}/api/v4")
    tokens = _mapping(config.get("GITLAB_TOKENS"))
    token = tokens.get(f"{repo.host}/{repo.owner}/{repo.name}") or config.get("GITLAB_TOKEN")
    return GitLabClient(base, token)
