"""Local stand-ins for the outside services, for development and the demo only.

``make run`` starts them when no real service is configured: a local Stripe
(:mod:`marketplace.standins.stripe`), a local forge answering GitHub's OAuth
flow and sending signed webhook deliveries (:mod:`marketplace.standins.forge`),
and a mail outbox shown at ``/dev/mail``. They are never shipped (the wheel
excludes this package) and never start in production: :func:`refusals` names
what forbids them, and the app factory refuses to start with them then.
"""
from __future__ import annotations

from urllib.parse import urlsplit


def refusals(config: dict) -> list[str]:
    """Why the stand-ins must not run with ``config`` (an app configuration
    mapping, see :func:`marketplace.config.from_environment`); empty when they may.

    Refused: a live Stripe key (``sk_live_``/``rk_live_``), a real OAuth
    client (``GITHUB_OAUTH_CLIENT_ID`` or ``GITLAB_OAUTH_CLIENT_ID`` that is
    not the local forge's), and a production address: ``FLASK_DEBUG`` off with an https ``PUBLIC_URL``.
    """
    reasons = []
    stripe_key = config.get("STRIPE_API_KEY") or ""
    if stripe_key.startswith(("sk_live_", "rk_live_")):
        reasons.append("a live Stripe key is configured (STRIPE_API_KEY)")
    for name in ("GITHUB_OAUTH_CLIENT_ID", "GITLAB_OAUTH_CLIENT_ID"):
        client = config.get(name)
        if client and client != LOCAL_OAUTH_CLIENT_ID:
            reasons.append(f"a real OAuth client is configured ({name})")
    if not config.get("DEBUG") and urlsplit(config.get("PUBLIC_URL") or "").scheme == "https":
        reasons.append("this looks like production: FLASK_DEBUG is off and PUBLIC_URL is https")
    return reasons


# The OAuth client id the local forge issues (never a real GitHub client's id).
LOCAL_OAUTH_CLIENT_ID = "local-forge-client"
