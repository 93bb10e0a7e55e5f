"""Test fixtures: one database built by the migrations and seeded once with the
real registry and recorded issues; every test runs inside a transaction that is
rolled back.

The database is ``TEST_DATABASE_URL`` when set (CI points it at PostgreSQL).
Otherwise PostgreSQL at 127.0.0.1:5432 is used when it answers, else a SQLite
file; tests marked ``postgres`` are then skipped, and the summary says so.
Redis is ``TEST_REDIS_URL`` or redis://127.0.0.1:6379/15 when it answers.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import rq.worker.base
import sqlalchemy as sa
from flask_migrate import upgrade
from hypothesis import HealthCheck, settings

# An RQ worker run in this process (Worker.work in the job tests) renames the
# process "rq:worker:…" and leaves it so: a test run then no longer shows as
# pytest to ps or pkill -f, and a run thought stopped goes on using the test
# database. Workers started as processes of their own keep RQ's names.
rq.worker.base.setprocname = lambda title: None

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED = ROOT / "seed"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/backlog_commons_test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"

# ``make mutation`` runs the tests under mutmut's tracing, which slows input
# generation; a fixed seed also makes each mutant's verdict repeatable.
settings.register_profile("mutation", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GITHUB_SECRET = "test-webhook-secret"
GITLAB_TOKEN = "test-gitlab-token"
STRIPE_SECRET = "whsec_test_secret"
_backend: dict[str, str] = {}


def _postgres_reachable(url: str) -> bool:
    """True when the server answers; creates the database when it is missing."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 2})
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": target.database})
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        admin.dispose()


def _choose_database(tmp_root: Path) -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        from marketplace.config import normalise_database_url

        url = normalise_database_url(explicit)
        if url.startswith("postgresql") and not _postgres_reachable(url):
            raise pytest.UsageError(f"TEST_DATABASE_URL is set but PostgreSQL does not answer: {url}")
        return url
    if _postgres_reachable(DEFAULT_PG):
        return DEFAULT_PG
    return f"sqlite:///{tmp_root / 'test.sqlite3'}"


# ``make mutation`` runs one test session per mutant. With TEST_DATABASE_REUSE=1 a
# PostgreSQL database that an earlier session migrated to the current head and
# seeded is used as it is (every test rolls back) instead of being built again.
REUSE_DATABASE = os.environ.get("TEST_DATABASE_REUSE") == "1"


def _built_already(url: str) -> bool:
    """True when ``url``'s database is at the migrations' head and holds the seeded backlog."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head and bool(
                conn.scalar(sa.text("SELECT count(*) FROM backlog_item")))
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = _choose_database(tmp_path_factory.mktemp("db"))
    _backend["database"] = sa.make_url(url).get_backend_name()
    if url.startswith("postgresql"):
        if REUSE_DATABASE and _built_already(url):
            _backend["reused"] = "yes"
        else:
            _reset_postgres(url)
    return url


def pytest_collection_modifyitems(session, config, items):
    """The browser tests (``tests/e2e/``) run last. They serve the app for real, so
    what they create is committed to the test database (a held pledge, claims,
    people), and a test that came after them would find those rows: the ledger
    check after a test that closes that item, or an idempotency key such as
    ``pledge:1:received``, would then be about a browser test's pledge."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path).replace("\\", "/"))


def pytest_sessionstart(session):
    # `make test` compiles the catalogues; a bare pytest run does it here, so the
    # translated pages under test are the .po files as they are now.
    from marketplace.catalogues import compile_catalogues

    compile_catalogues()


def make_app(database_url: str, **extra):
    from marketplace import create_app

    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": None,
        "SERVER_NAME": "localhost",
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN,
        "GITHUB_TOKEN": None,
        "RATELIMIT_AUTH": "10000 per minute",
        "SIGNIN_BACKOFF_FREE": 10000,  # one app serves the whole session; tests/accounts/test_signin_backoff.py sets 5
        "RATELIMIT_API": "100000 per minute",
        "PUBLIC_URL": "http://localhost",
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "MAIL_SERVER": None,
        # The response cache is per test (tests/httpcache); elsewhere a page is rendered every time.
        "HTTP_CACHE_TYPE": "NullCache",
        "HTTP_CACHE_VERSION_SECONDS": 0,
        "HTTP_CACHE_FRAGMENTS": False,
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture(scope="session")
def app(database_url):
    """The application on the migrated, seeded test database."""
    from marketplace.backlog.snapshot import load_snapshot
    from marketplace.extensions import db
    from marketplace.projects.registry import import_registry, load_registry_file

    app = make_app(database_url)
    if not _backend.get("reused"):
        with app.app_context():
            upgrade()
            import_registry(load_registry_file(SEED / "dpg" / "registry.json"))
            load_snapshot(SEED / "dpg-issues")
            db.session.commit()
            db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


from flask_sqlalchemy.session import Session as _FlaskSession  # noqa: E402


class _BoundSession(_FlaskSession):
    """Flask-SQLAlchemy picks an engine per table; in tests everything must go
    through the one connection whose transaction is rolled back."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return self.bind


def _ledger_stays_sound(request) -> None:
    """``flask ledger check`` after every test on the session: money rules hold
    whatever the test did (tests that corrupt the ledger on purpose are marked
    ``ledger_tampered``)."""
    from marketplace.extensions import db
    from marketplace.ledger.check import check

    if request.node.get_closest_marker("ledger_tampered") is not None:
        return
    if not db.session.is_active:  # a test that ended on an expected database error
        db.session.rollback()
    violations = check()
    assert violations == [], "flask ledger check fails after the test: " + "; ".join(map(str, violations))


@pytest.fixture
def session(app, request):
    """The database session inside a transaction rolled back after the test.

    Commits made by the code under test (CLI commands, views) release a
    savepoint instead, so they are rolled back too.
    """
    from marketplace.extensions import db

    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = db._make_scoped_session(
            {"class_": _BoundSession, "bind": connection, "join_transaction_mode": "create_savepoint"}
        )
        try:
            yield db.session
            _ledger_stays_sound(request)
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app, session):
    return app.test_client()


@pytest.fixture
def runner(app, session):
    return app.test_cli_runner()


@pytest.fixture
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("TEST_REDIS_URL"):
            raise pytest.UsageError(f"TEST_REDIS_URL is set but Redis does not answer: {url}") from None
        pytest.skip(f"no Redis server at {url}")
    _backend["redis"] = url
    return url


@pytest.fixture
def rq_redis(app, redis_url):
    """The app enqueues on real Redis (an emptied database) during the test; yields the connection."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    app.config["REDIS_URL"] = redis_url
    app.extensions.pop("redis", None)
    yield connection
    app.config["REDIS_URL"] = None
    app.extensions.pop("redis", None)
    connection.flushdb()


@pytest.fixture(autouse=True)
def _require_postgres_for_marked_tests(request):
    if request.node.get_closest_marker("postgres") is None:
        return
    if not request.getfixturevalue("database_url").startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL or start a server at 127.0.0.1:5432")


def pytest_terminal_summary(terminalreporter):
    if _backend:
        terminalreporter.write_line(
            f"backlog commons tests ran on database={_backend.get('database')} "
            f"redis={'yes' if 'redis' in _backend else 'not used or not available'}"
        )


@pytest.fixture
def github_forge(app):
    """A fake GitHub API; the app's GITHUB_API_URL points at it during the test."""
    from tests.forges.fake_forge import FakeForge

    forge = FakeForge("github").start()
    previous = app.config["GITHUB_API_URL"]
    app.config["GITHUB_API_URL"] = forge.url
    yield forge
    app.config["GITHUB_API_URL"] = previous
    forge.stop()


@pytest.fixture
def gitlab_forge(app):
    """A fake GitLab API for host gitlab.example.org."""
    from tests.forges.fake_forge import FakeForge

    forge = FakeForge("gitlab").start()
    previous = app.config.get("GITLAB_API_URLS")
    app.config["GITLAB_API_URLS"] = f"gitlab.example.org={forge.url}"
    yield forge
    app.config["GITLAB_API_URLS"] = previous
    forge.stop()


def make_repository(owner: str, name: str, *, host: str = "github.com", project_slug: str = "odk",
                    forge_id: int | None = None, default_branch: str | None = None):
    """A repository of an existing member project (flushed)."""
    from sqlalchemy import select

    from marketplace.extensions import db
    from marketplace.forges.service import add_repository
    from marketplace.forges.urls import parse_repository_url
    from marketplace.projects.models import MemberProject

    project = db.session.scalar(select(MemberProject).where(MemberProject.slug == project_slug))
    repo = add_repository(project, parse_repository_url(f"https://{host}/{owner}/{name}"), label=None, actor="test")
    repo.forge_id = forge_id
    repo.default_branch = default_branch
    db.session.flush()
    return repo


@pytest.fixture
def smtp_server(app):
    """A real SMTP server (aiosmtpd) on a free port; the app sends its mail there.
    Yields the list of received ``email.message.EmailMessage`` objects."""
    import email
    import email.policy
    import socket

    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, smtp_session, envelope):  # noqa: N802
            received.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    yield received
    app.config.update(MAIL_SERVER=None, MAIL_PORT=25)
    controller.stop()


@pytest.fixture
def oauth_github(app, github_forge):
    """The fake forge also plays GitHub's OAuth endpoints for the app's OAuth client."""
    app.config.update(GITHUB_OAUTH_CLIENT_ID="client-id", GITHUB_OAUTH_CLIENT_SECRET="client-secret",
                      GITHUB_OAUTH_URL=github_forge.url)
    yield github_forge
    app.config.update(GITHUB_OAUTH_CLIENT_ID=None, GITHUB_OAUTH_CLIENT_SECRET=None,
                      GITHUB_OAUTH_URL="https://github.com")
