"""Absolute links for e-mails and for other sites (Stripe's return URLs)."""
from __future__ import annotations

from flask import current_app, has_request_context, url_for


def url_for_public(endpoint: str, **values) -> str:
    """An absolute link on ``PUBLIC_URL`` — never on the request's Host
    header, which a stranger can set to their own site. Outside a request
    (a job) the path is built from the URL map alone."""
    if has_request_context():
        path = url_for(endpoint, **values)
    else:
        path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_URL"].rstrip("/") + path
