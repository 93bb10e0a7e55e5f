"""Security headers on every response."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from flask_login import current_user

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
# Pages about one person or the site's money: never kept by a browser's or a proxy's cache.
PRIVATE_PREFIXES = ("/account", "/admin", "/pledges", "/payouts", "/claims", "/connect", "/reset", "/verify",
                    "/login", "/signup", "/dev")
HSTS = "max-age=31536000; includeSubDomains"  # a year, once the site is reached over https


def _origin(url: str) -> str:
    """``https://github.com/x`` → ``https://github.com`` (a CSP source)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def register_security_headers(app: Flask) -> None:
    """Add CSP, framing, sniffing and referrer headers, echo the request id,
    add ``Strict-Transport-Security`` when ``PUBLIC_URL`` is https, and
    ``Cache-Control: private, no-store`` on private pages and on every answer to a
    signed-in person."""
    checkout = STRIPE_PAGES
    if app.config.get("STRIPE_API_BASE"):
        # The local Stripe stand-in serves its checkout page from its own address.
        checkout += " " + app.config["STRIPE_API_BASE"].rstrip("/")
    for forge in ("GITHUB", "GITLAB"):
        # Only a configured OAuth client shows its "Connect" button.
        if app.config.get(f"{forge}_OAUTH_CLIENT_ID") and app.config.get(f"{forge}_OAUTH_URL"):
            checkout += " " + _origin(app.config[f"{forge}_OAUTH_URL"])
    policy = CONTENT_SECURITY_POLICY.format(checkout=checkout)
    https = urlsplit(app.config.get("PUBLIC_URL") or "").scheme == "https"

    @app.after_request
    def set_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if g.get("request_id"):
            response.headers.setdefault("X-Request-ID", g.request_id)
        if https:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static" and (request.path.startswith(PRIVATE_PREFIXES)
                                             or current_user.is_authenticated):
            # Signed-in pages name the person; private ones show their money.
            response.headers["Cache-Control"] = "private, no-store"
        return response
