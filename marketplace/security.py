"""Security headers on every response."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, g

# No inline script anywhere: the pages work without JavaScript. Forms post to
# this site; a pledge form's answer redirects to Stripe Checkout, and the
# payout settings form's to Stripe Connect onboarding, and "Connect GitHub"
# (or GitLab) to the forge's OAuth authorize page, which form-action must
# allow (browsers apply it to redirects after a submission).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' {checkout}"
)
STRIPE_PAGES = "https://checkout.stripe.com https://connect.stripe.com"


def _origin(url: str) -> str:
    """``https://github.com/x`` → ``https://github.com`` (a CSP source)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def register_security_headers(app: Flask) -> None:
    """Add CSP, framing, sniffing and referrer headers, and echo the request id."""
    checkout = STRIPE_PAGES
    if app.config.get("STRIPE_API_BASE"):
        # The local Stripe stand-in serves its checkout page from its own address.
        checkout += " " + app.config["STRIPE_API_BASE"].rstrip("/")
    for forge in ("GITHUB", "GITLAB"):
        # Only a configured OAuth client shows its "Connect" button.
        if app.config.get(f"{forge}_OAUTH_CLIENT_ID") and app.config.get(f"{forge}_OAUTH_URL"):
            checkout += " " + _origin(app.config[f"{forge}_OAUTH_URL"])
    policy = CONTENT_SECURITY_POLICY.format(checkout=checkout)

    @app.after_request
    def set_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if g.get("request_id"):
            response.headers.setdefault("X-Request-ID", g.request_id)
        return response
