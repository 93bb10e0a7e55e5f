"""Shared set-up of the benchmarks: the app on a PostgreSQL benchmark database."""
from __future__ import annotations

import contextlib
import os

import psycopg
import sqlalchemy as sa

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/backlog_commons_bench"


def bench_url() -> str:
    from marketplace.config import normalise_database_url

    return normalise_database_url(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))


def bench_app():
    """The app on the benchmark database, created and migrated if needed."""
    from flask_migrate import upgrade

    from marketplace import create_app

    url = sa.make_url(bench_url())
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
        "SECRET_KEY": "benchmark",
        "SERVER_NAME": "localhost",
    })
    with app.app_context():
        upgrade()
    return app


@contextlib.contextmanager
def raw_connection(app):
    """A plain psycopg connection to the benchmark database (no SQLAlchemy)."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        yield conn
