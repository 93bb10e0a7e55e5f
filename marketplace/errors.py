"""Error pages (HTML) and error bodies (JSON under /api/)."""
from __future__ import annotations

import time

from flask import Flask, Response, flash, g, jsonify, redirect, render_template, request
from flask.globals import request_ctx
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.exceptions import HTTPException, SecurityError

from marketplace.extensions import db, limiter


class DomainError(ValueError):
    """Base of every refusal a domain service raises: ``str(exc)`` is a message
    already translated for the person, ``status`` the HTTP status to answer with
    (409 unless the subclass or the raiser says otherwise).

    Views may catch it to re-render a form; when they do not, the one handler
    below rolls the session back and answers: JSON under /api/, a flashed message
    and a 303 to the page the view named with :func:`on_refusal_go_to`, or else
    the error page with ``status``."""

    status: int = 409

    def __init__(self, *args, status: int | None = None):
        super().__init__(*args)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def on_refusal_go_to(url: str) -> None:
    """Name the page (a local URL) a refused POST of this request returns to."""
    g.refusal_back = url


class BadFilter(ValueError):
    """A query parameter has a value we cannot use; the message says which and why."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def wants_json() -> bool:
    return request.path.startswith("/api/")


def too_many_requests_message() -> str:
    """What a 429 means, in words, with the wait before the limit resets
    (seconds under two minutes, else minutes, rounded up) as the limiter counts it."""
    limit = limiter.current_limit
    wait = max(1, limit.reset_at - int(time.time())) if limit else 60
    if wait < 120:
        when = ngettext("%(num)d second", "%(num)d seconds", wait)
    else:
        when = ngettext("%(num)d minute", "%(num)d minutes", -(-wait // 60))
    return _("Too many attempts came from your address in a short time, so this one was not done. "
             "Nothing was changed. Try again in %(when)s.", when=when)


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors as JSON ``{"error": {"status", "message"}}`` under /api/, else HTML."""

    @app.errorhandler(BadFilter)
    def bad_filter(exc: BadFilter):
        if wants_json():
            return jsonify(error={"status": 400, "parameter": exc.parameter, "message": exc.message}), 400
        return render_template("errors/error.html", status=400, message=exc.message), 400

    @app.errorhandler(DomainError)
    def refused(exc: DomainError):
        db.session.rollback()
        if wants_json():
            return jsonify(error={"status": exc.status, "message": exc.message}), exc.status
        back = g.get("refusal_back")
        if back:
            flash(exc.message, "error")
            return redirect(back, code=303)
        return render_template("errors/error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError):
        # No URL can be built for an untrusted Host, so no page template either.
        return Response("Bad Request: untrusted host\n", 400, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            400: _("The request could not be understood."),
            404: _("There is nothing at this address."),
            405: _("This address does not accept that method."),
            413: _("The request is too large."),
        }
        message = messages.get(exc.code, exc.description or exc.name)
        if exc.code == 429:
            message = too_many_requests_message()
        if exc.code == 400 and exc.description and "CSRF" in exc.description:
            message = _("The form expired or was sent from another site. Please try again.")
        # Keep the exception's own headers (a 405's Allow, a 429's Retry-After), not its content type.
        headers = [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]
        if wants_json():
            return jsonify(error={"status": exc.code, "message": str(message)}), exc.code, headers
        if request_ctx.url_adapter is None:
            # A Host header no URL can be built for (``a..b``, a label over 63
            # characters): the page template builds URLs, so answer in plain text.
            return Response(f"{exc.code} {message}\n", exc.code, headers, mimetype="text/plain")
        return render_template("errors/error.html", status=exc.code, message=message), exc.code, headers
