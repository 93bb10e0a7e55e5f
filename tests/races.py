"""The harness of the race tests: an app on a PostgreSQL database of its own,
so that two sessions commit for real, and a way to start calls at once.

Every race database is a copy of one template built by the migrations once per
test process (``CREATE DATABASE … TEMPLATE``): a copy takes a fraction of a
second where running the migrations again takes seconds, and each test still
starts from the schema the migrations build, with no rows."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

_templates: dict[str, str] = {}


def _admin_engine(database_url: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _template(database_url: str) -> str:
    """The name of the migrated, empty template database beside ``database_url``
    (built on first use in this process)."""
    if database_url in _templates:
        return _templates[database_url]
    from flask_migrate import upgrade

    from marketplace.extensions import db
    from tests.conftest import make_app

    name = f"{sa.make_url(database_url).database}_race_template"
    admin = _admin_engine(database_url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        app = make_app(sa.make_url(database_url).set(database=name).render_as_string(hide_password=False))
        with app.app_context():
            upgrade()
            db.engine.dispose()  # a template cannot be copied while anyone is connected to it
    finally:
        admin.dispose()
    _templates[database_url] = name
    return name


@contextmanager
def race_database_app(database_url: str, name: str, **config: Any) -> Iterator:
    """An app on a fresh PostgreSQL database ``name`` with the migrations'
    schema and no rows (no dispute window unless ``config`` says otherwise),
    dropped afterwards: sessions there commit for real. Skips the test where
    ``database_url`` is not PostgreSQL."""
    from marketplace.extensions import db
    from tests.conftest import make_app

    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL or start a server at 127.0.0.1:5432")
    template = _template(database_url)
    url = sa.make_url(database_url).set(database=name)
    admin = _admin_engine(database_url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    app = make_app(url.render_as_string(hide_password=False), **{"PAYOUT_DISPUTE_WINDOW_DAYS": 0, **config})
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def race_name(database_url: str, suffix: str) -> str:
    """The race database's name for ``suffix``, beside the test database (so two
    test runs on two databases never share one)."""
    return f"{sa.make_url(database_url).database}_{suffix}"


def at_once(*calls: Callable[[], Any]) -> list:
    """Run each call in a thread of its own, all released together by a barrier;
    returns their results in the order they finished. A call that raises is
    re-raised here after every thread has ended."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = []
    errors: list[BaseException] = []

    def run(call):
        barrier.wait()
        try:
            outcomes.append(call())
        except BaseException as error:  # noqa: BLE001 - handed back to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return outcomes
