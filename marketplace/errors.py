"""Error pages (HTML) and error bodies (JSON under /api/)."""
from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, SecurityError


class BadFilter(ValueError):
    """A query parameter has a value we cannot use; the message says which and why."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def wants_json() -> bool:
    return request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors as JSON ``{"error": {"status", "message"}}`` under /api/, else HTML."""

    @app.errorhandler(BadFilter)
    def bad_filter(exc: BadFilter):
        if wants_json():
            return jsonify(error={"status": 400, "parameter": exc.parameter, "message": exc.message}), 400
        return render_template("errors/error.html", status=400, message=exc.message), 400

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
        if exc.code == 400 and exc.description and "CSRF" in exc.description:
            message = _("The form expired or was sent from another site. Please try again.")
        if wants_json():
            return jsonify(error={"status": exc.code, "message": str(message)}), exc.code
        return render_template("errors/error.html", status=exc.code, message=message), exc.code
