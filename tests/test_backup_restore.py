"""The README's backup, tested (issue 23, "Operating"): ``pg_dump
--format=custom`` of a database holding money, ``pg_restore --no-owner`` into a
fresh database, and ``flask ledger check`` on the restored copy prints
``ledger ok``, with every table's rows and the schema's revision as they were."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT
from tests.races import race_database_app

pytestmark = pytest.mark.postgres


def _libpq_url(url: sa.URL) -> str:
    """The URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _row_counts(url: sa.URL) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return {table: conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"')) for table in sorted(tables)}
    finally:
        engine.dispose()


def test_a_nightly_dump_restores_into_a_fresh_database_that_passes_the_ledger_check(database_url, tmp_path):
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian package postgresql-client)")
    from marketplace.extensions import db
    from marketplace.standins.stripe import LocalStripe
    from tests.payouts.test_transfer_crash import _executed_share_in_a_real_database

    source_name = f"{sa.make_url(database_url).database}_backup_source"
    restored = sa.make_url(database_url).set(database=f"{sa.make_url(database_url).database}_backup_restored")
    admin = sa.create_engine(sa.make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    server = LocalStripe()
    try:
        with race_database_app(database_url, source_name) as app:
            app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
            with app.app_context():
                _executed_share_in_a_real_database(server)  # a pledge held, a payout executed: ledger rows
                source = db.engine.url
                db.session.remove()
                db.engine.dispose()
            before = _row_counts(source)
            assert before["ledger_entry"] > 0 and before["alembic_version"] == 1
            dump = tmp_path / "commons-nightly.dump"
            done = subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", _libpq_url(source)],
                                  capture_output=True, text=True, timeout=300)
            if done.returncode != 0 and "server version mismatch" in done.stderr:
                pytest.skip(f"pg_dump is older than the server: {done.stderr.strip()}")
            assert done.returncode == 0, done.stderr
        # The source is gone (dropped with its app): only the dump is left, as after losing the server.
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{restored.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{restored.database}"'))
        done = subprocess.run(["pg_restore", "--no-owner", f"--dbname={_libpq_url(restored)}", str(dump)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert _row_counts(restored) == before
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "REDIS_URL"))}
        env.update(FLASK_APP=str(ROOT / "wsgi.py"), PYTHONPATH=str(ROOT), APP_ENV="development",
                   SECRET_KEY="restore-test", DATABASE_URL=restored.render_as_string(hide_password=False))
        checked = subprocess.run([sys.executable, "-m", "flask", "ledger", "check"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert (checked.returncode, checked.stdout.strip()) == (0, "ledger ok: every invariant holds"), checked.stderr
    finally:
        server.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{restored.database}" WITH (FORCE)'))
        admin.dispose()
