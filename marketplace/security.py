"""Security headers on every response."""
from __future__ import annotations

from flask import Flask, Response, g

# No inline script anywhere: the pages work without JavaScript. Forms post to
# this site; a pledge form's answer redirects to Stripe Checkout, and the
# payout settings form's to Stripe Connect onboarding, which form-action must
# allow (browsers apply it to redirects after a submission).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' {checkout}"
)
STRIPE_PAGES = "https://checkout.stripe.com https://connect.stripe.com"


def register_security_headers(app: Flask) -> None:
    """Add CSP, framing, sniffing and referrer headers, and echo the request id."""
    checkout = STRIPE_PAGES
    if app.config.get("STRIPE_API_BASE"):
        # The local Stripe stand-in serves its checkout page from its own address.
        checkout += " " + app.config["STRIPE_API_BASE"].rstrip("/")
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
