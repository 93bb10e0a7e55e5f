"""Backlog Commons: a shared backlog and bounty marketplace for digital public goods."""
from __future__ import annotations

import logging
import secrets

from flask import Flask, abort, g, has_request_context, request
from flask_babel import lazy_gettext as _l

from marketplace import config as config_module
from marketplace.extensions import csrf, db, limiter, login_manager, migrate


class Marketplace(Flask):
    """Flask, with Post/Redirect/Get answered as HTTP means it: a redirect
    after a POST (or any other method that changes something) is 303 See
    Other (RFC 9110, section 15.4.4), so the next request is a GET of the page
    named, never the form sent again. A redirect that names its own code
    keeps it; GET and HEAD keep Flask's 302."""

    def redirect(self, location: str, code: int = 302):
        """``flask.redirect`` and Flask-Login call this; see the class."""
        if code == 302 and has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS"):
            code = 303
        return super().redirect(location, code)


def create_app(config: dict | None = None) -> Flask:
    """Create the Flask application.

    ``config`` overrides the environment-derived settings (see
    :func:`marketplace.config.from_environment`). Raises ``RuntimeError`` when
    ``SECRET_KEY`` is unset outside debug and testing.
    """
    app = Marketplace(
        __name__,
        template_folder=str(config_module.ROOT / "templates"),
        static_folder=str(config_module.ROOT / "static"),
        instance_path=str(config_module.INSTANCE_DIR),
    )
    app.config.update(config_module.from_environment())
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = config_module.normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    if not app.config.get("SECRET_KEY"):
        if app.config.get("DEBUG") or app.config.get("TESTING"):
            app.config["SECRET_KEY"] = secrets.token_hex(32)
        else:
            raise RuntimeError(
                "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
                "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
            )
    refusals = config_module.production_refusals(app.config)
    if refusals:
        raise RuntimeError("Production configuration refused: " + "; ".join(refusals) + ". Set APP_ENV=development "
                           "to run without them (never on a public site).")
    if not app.config.get("TESTING"):
        # Text or JSON on stdout, request and job ids on every record, no token links (marketplace.logconfig).
        from marketplace.logconfig import configure_logging

        configure_logging(app.config)
    # Info messages (e-mails handed to the local outbox) are shown.
    app.logger.setLevel(logging.INFO)
    if app.config.get("PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if app.config.get("TRUSTED_HOSTS"):
        from marketplace.health.service import ProbeHosts

        app.wsgi_app = ProbeHosts(app.wsgi_app, app.config["TRUSTED_HOSTS"])
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        # Secure cookies unless debugging or testing on plain http.
        secure = not (app.config.get("DEBUG") or app.config.get("TESTING"))
        app.config["SESSION_COOKIE_SECURE"] = app.config["REMEMBER_COOKIE_SECURE"] = secure
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        config_module.INSTANCE_DIR.mkdir(exist_ok=True)

    import marketplace.presence.watch  # noqa: F401  (queues living-comment refreshes after commit)
    import marketplace.tasks  # noqa: F401  (session hooks that enqueue after commit)
    from marketplace import models  # noqa: F401  (register every table)
    from marketplace.routing import RowIdConverter, url_pattern

    app.url_map.converters["id"] = RowIdConverter
    app.jinja_env.globals["url_pattern"] = url_pattern  # a page's row links with one url_for each

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config_module.ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.session_protection = "basic"
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    # Redis down must not turn sign-in into a 500: the limits are then counted
    # in this process's memory until Redis answers again (Flask-Limiter checks
    # it and switches back), and a dead Redis costs at most a second per try.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    if app.config["RATELIMIT_STORAGE_URI"].startswith("redis"):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Flask-Limiter's limiter is one object per process and takes an app's
    # missing RATELIMIT_ENABLED from the previous app: an app that turned the
    # limits off (the demo) would turn them off for every app made after it.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)

    from marketplace.i18n import init_i18n
    from marketplace.markdown import emojize

    init_i18n(app)
    from marketplace.fiscal_host import fiscal_host

    app.context_processor(lambda: {"fiscal_host": fiscal_host()})
    app.jinja_env.filters["emojize"] = emojize  # forge labels: ":bee: docs" shows 🐝

    from marketplace.accounts.models import User

    @login_manager.user_loader
    def load_user(session_id: str):
        # "id:version": a password change bumps the version and ends other sessions.
        user_id, _, version = session_id.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or user.session_version != int(version):
            return None
        return user

    from marketplace.accounts.views import bp as accounts_bp
    from marketplace.admin import bp as admin_bp
    from marketplace.api.reports import bp as api_reports_bp
    from marketplace.api.views import bp as api_bp
    from marketplace.backlog.views import bp as backlog_bp
    from marketplace.claims.views import bp as claims_bp
    from marketplace.funds.views import bp as funds_bp
    from marketplace.health.views import bp as health_bp
    from marketplace.pages.views import bp as pages_bp
    from marketplace.payouts.views import bp as payouts_bp
    from marketplace.pledges.views import bp as pledges_bp
    from marketplace.pools.views import bp as pools_bp
    from marketplace.presence.views import bp as presence_bp
    from marketplace.projects.views import bp as projects_bp
    from marketplace.reports.views import bp as reports_bp
    from marketplace.roles.views import bp as roles_bp
    from marketplace.training.views import bp as training_bp
    from marketplace.webhooks.views import bp as webhooks_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(backlog_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_reports_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(pledges_bp)
    app.register_blueprint(claims_bp)
    app.register_blueprint(payouts_bp)
    app.register_blueprint(pools_bp)
    app.register_blueprint(funds_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(training_bp)
    app.register_blueprint(presence_bp)
    app.register_blueprint(roles_bp)
    csrf.exempt(api_bp)
    csrf.exempt(api_reports_bp)
    csrf.exempt(webhooks_bp)

    from marketplace.errors import register_error_handlers
    from marketplace.payouts.service import connect_signals
    from marketplace.pools.service import connect_signals as connect_pool_signals
    from marketplace.roles.service import connect_signals as connect_role_signals
    from marketplace.security import register_security_headers
    from marketplace.training.service import connect_signals as connect_training_signals

    # One domain reacting to another (a certification granted, money held late).
    connect_signals()
    connect_pool_signals()
    connect_training_signals()  # issue 19: training claims, mentors, certification earned
    connect_role_signals()

    register_error_handlers(app)
    register_security_headers(app)

    @app.before_request
    def fresh_request_globals() -> None:
        # Flask-Login caches the user and Flask-WTF the CSRF token on g, which
        # lives as long as the app context. A request that shares an outer
        # context (the CLI, the test client) must start as clean as a request
        # in production, where each one has its own context.
        for key in list(vars(g)):
            delattr(g, key)

    @app.before_request
    def refuse_nul_characters() -> None:
        # No stored text can contain NUL (PostgreSQL refuses it); answer 400
        # here rather than let a query fail.
        form = request.form if request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data") else {}
        pairs = list(request.args.items(multi=True)) + (list(form.items(multi=True)) if form else [])
        if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in pairs):
            abort(400)

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming[:64] if incoming.isprintable() and incoming else secrets.token_hex(8)

    from marketplace.httpcache.service import init_http_cache

    init_http_cache(app)

    from marketplace.cli import register_cli

    register_cli(app)
    if app.config.get("STANDINS"):
        _register_standins(app)
    return app


def _register_standins(app: Flask) -> None:
    """The development pages of the local stand-ins (``STANDINS`` set by
    ``make run``). Raises ``RuntimeError`` when the configuration is a
    production one (:func:`marketplace.standins.refusals`) or when the stand-ins
    are not installed (an installed wheel does not ship them)."""
    try:
        from marketplace.standins import refusals
        from marketplace.standins.views import register
    except ImportError as error:
        raise RuntimeError("STANDINS is set but the local stand-ins are not installed "
                           "(they are development tools, not shipped)") from error
    reasons = refusals(app.config)
    if reasons:
        raise RuntimeError("The local stand-ins cannot run here: " + "; ".join(reasons) + ".")
    register(app)
