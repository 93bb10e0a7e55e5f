"""The migrations build the schema from empty, agree with the models, and have one head."""
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from marketplace.extensions import db
from tests.conftest import ROOT, make_app


def include_object(obj, name, type_, reflected, compare_to):
    return not (name or "").startswith(("backlog_item_fts", "ix_backlog_item_search", "search_document"))


def diff_after_upgrade(app) -> list:
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            return compare_metadata(context, db.metadata)


def test_one_head():
    script = ScriptDirectory(str(ROOT / "migrations"))
    assert len(script.get_heads()) == 1


def test_sqlite_schema_from_migrations_matches_models(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    assert diff_after_upgrade(app) == []
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"backlog_item", "backlog_item_fts", "member_project", "repository"} <= tables
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) == {"alembic_version"}


@pytest.mark.postgres
def test_postgres_schema_from_migrations_matches_models(database_url):
    url = sa.make_url(database_url).set(database=f"{sa.make_url(database_url).database}_migration_check")
    admin = sa.create_engine(sa.make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    try:
        app = make_app(url.render_as_string(hide_password=False))
        assert diff_after_upgrade(app) == []
        with app.app_context():
            indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("backlog_item")}
            assert "ix_backlog_item_search" in indexes
            columns = {c["name"] for c in sa.inspect(db.engine).get_columns("backlog_item")}
            assert "search_document" in columns
            downgrade(revision="0015")
            assert "search_document" not in {
                c["name"] for c in sa.inspect(db.engine).get_columns("backlog_item")}
            assert "ix_backlog_item_search" in {i["name"] for i in sa.inspect(db.engine).get_indexes("backlog_item")}
            upgrade()
            downgrade(revision="base")
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_search_uses_the_full_text_index(app, session):
    from marketplace.backlog.models import BacklogItem
    from marketplace.backlog.search import search_condition

    stmt = sa.select(BacklogItem.id).where(search_condition("shared device"))
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    # With 228 rows the planner prefers a scan; forbid it to see that the index applies.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "ix_backlog_item_search" in plan


def test_sqlite_search_survives_every_migration(tmp_path):
    """Batch migrations rebuild tables on SQLite; the FTS triggers must come back."""
    app = make_app(f"sqlite:///{tmp_path / 's.sqlite3'}")
    with app.app_context():
        upgrade()
        triggers = {
            row[0]
            for row in db.session.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        }
        assert triggers == {"backlog_item_fts_insert", "backlog_item_fts_delete", "backlog_item_fts_update",
                            "repository_fts_names", "member_project_fts_names"}


def test_search_document_migration_goes_up_and_down_on_sqlite(tmp_path):
    """0016 fills both FTS5 tables from the items already there (title, body,
    project and repository names); its downgrade gives 0001's index back."""
    app = make_app(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    with app.app_context():
        upgrade(revision="0015")
        db.session.execute(sa.text(
            "INSERT INTO member_project (id, slug, name, aliases, description, licences, types, sectors, "
            "organisations, registry_status, created_at, updated_at) VALUES "
            "(1, 'p', 'Projectqq', '[]', '', '[]', '[]', '[]', '[]', 'active', '2026-01-01', '2026-01-01')"))
        db.session.execute(sa.text(
            "INSERT INTO repository (id, project_id, forge, host, owner, name, path_key, url, sync_status, "
            "created_at) VALUES (1, 1, 'github', 'github.com', 'o', 'repoqq', 'o/repoqq', "
            "'https://github.com/o/repoqq', 'never', '2026-01-01')"))
        db.session.execute(sa.text(
            "INSERT INTO backlog_item (id, repository_id, forge_host, forge_id, number, title, body, state, "
            "html_url, comments_count, locked, forge_created_at, forge_updated_at, hidden, synced_at) VALUES "
            "(1, 1, 'github.com', 9, 1, 'Edit setup.py', 'Registo de São Tomé', 'open', "
            "'https://github.com/o/r/issues/1', 0, 0, '2026-01-01', '2026-01-01', 0, '2026-01-01')"))
        db.session.commit()
        db.session.remove()
        upgrade(revision="0016")
        for query in ('"setup py"', "sao", "projectqq", "repoqq"):
            assert db.session.execute(sa.text(
                "SELECT rowid FROM backlog_item_fts WHERE backlog_item_fts MATCH :q"), {"q": query}).all() == [(1,)]
        assert db.session.execute(sa.text(
            "SELECT rowid FROM backlog_item_fts_stem WHERE backlog_item_fts_stem MATCH 'registos'")).all() == [(1,)]
        db.session.remove()
        downgrade(revision="0015")
        assert db.session.execute(sa.text(
            "SELECT rowid FROM backlog_item_fts WHERE backlog_item_fts MATCH 'setup'")).all() == [(1,)]
        assert "backlog_item_fts_stem" not in sa.inspect(db.engine).get_table_names()


def test_sqlite_upgrade_keeps_rows_of_tables_that_batch_mode_rebuilds(tmp_path):
    """0002 rebuilds backlog_item and 0007 member_project on SQLite; the rows that
    refer to them (labels, repositories) must survive an in-place upgrade."""
    app = make_app(f"sqlite:///{tmp_path / 'u.sqlite3'}")
    with app.app_context():
        upgrade(revision="0001")
        db.session.execute(sa.text(
            "INSERT INTO member_project (id, slug, name, aliases, description, licences, types, sectors, "
            "organisations, registry_status, created_at, updated_at) VALUES "
            "(1, 'p', 'P', '[]', '', '[]', '[]', '[]', '[]', 'active', '2026-01-01', '2026-01-01')"))
        db.session.execute(sa.text(
            "INSERT INTO repository (id, project_id, forge, host, owner, name, path_key, url, sync_status, "
            "created_at) VALUES (1, 1, 'github', 'github.com', 'o', 'r', 'o/r', 'https://github.com/o/r', "
            "'never', '2026-01-01')"))
        db.session.execute(sa.text(
            "INSERT INTO backlog_item (id, repository_id, forge_host, forge_id, number, title, state, html_url, "
            "comments_count, locked, forge_created_at, forge_updated_at, hidden, synced_at) VALUES "
            "(1, 1, 'github.com', 9, 1, 'A searchable title', 'open', 'https://github.com/o/r/issues/1', 0, 0, "
            "'2026-01-01', '2026-01-01', 0, '2026-01-01')"))
        db.session.execute(sa.text("INSERT INTO item_label (item_id, name) VALUES (1, 'bug')"))
        db.session.commit()
        upgrade()
        assert db.session.execute(sa.text("SELECT count(*) FROM item_label")).scalar() == 1
        assert db.session.execute(sa.text("SELECT count(*) FROM repository")).scalar() == 1
        found = db.session.execute(sa.text(
            "SELECT rowid FROM backlog_item_fts WHERE backlog_item_fts MATCH 'searchable'")).all()
        assert found == [(1,)]


def test_own_reversal_memos_become_ledger_references_and_back(tmp_path):
    """0012 gives the transactions found by memo text before ('share:<id>:own-reversal')
    their structured reference; its downgrade writes the memo again."""
    app = make_app(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with app.app_context():
        upgrade(revision="0011")
        db.session.execute(sa.text(
            "INSERT INTO ledger_transaction (id, kind, idempotency_key, memo, created_at) VALUES "
            "(1, 'transfer_reversed', 'transfer-reversal:trr_1', 'share:42:own-reversal', '2026-11-01'), "
            "(2, 'payout_returned', 'payout:7:returned', 'the bank sent it back', '2026-11-02')"))
        db.session.commit()
        upgrade(revision="0012")
        rows = db.session.execute(sa.text(
            "SELECT id, memo, reference_kind, reference_id FROM ledger_transaction ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [(1, None, "own_reversal", 42),
                                                (2, "the bank sent it back", None, None)]
        db.session.remove()  # SQLite: the downgrade's connection must not wait on this one's read
        downgrade(revision="0011")
        memos = db.session.execute(sa.text("SELECT memo FROM ledger_transaction ORDER BY id")).scalars().all()
        assert memos == ["share:42:own-reversal", "the bank sent it back"]


def test_reports_migration_goes_down_one_step_and_up_again(tmp_path):
    """0017 adds the reports' four tables and its downgrade takes exactly those away."""
    below = ScriptDirectory(str(ROOT / "migrations")).get_revision("0017").down_revision
    reports_tables = {"grant_tag", "grant_pledge", "project_country", "report_snapshot"}
    app = make_app(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    with app.app_context():
        upgrade()
        at_head = set(sa.inspect(db.engine).get_table_names())
        db.session.remove()
        downgrade(revision="0017")
        at_0017 = set(sa.inspect(db.engine).get_table_names())
        assert reports_tables <= at_0017
        downgrade(revision=below)
        assert set(sa.inspect(db.engine).get_table_names()) == at_0017 - reports_tables
        upgrade()
        assert set(sa.inspect(db.engine).get_table_names()) == at_head


def test_training_gaps_migration_keeps_reviews_of_a_deleted_mentor_and_goes_back(tmp_path):
    """0027: ``mentor_review.mentor_id`` nullable, ``ON DELETE SET NULL``; its downgrade puts back CASCADE."""
    def mentor_column():
        inspector = sa.inspect(db.engine)
        [fk] = [f for f in inspector.get_foreign_keys("mentor_review") if f["constrained_columns"] == ["mentor_id"]]
        [column] = [c for c in inspector.get_columns("mentor_review") if c["name"] == "mentor_id"]
        return column["nullable"], fk["options"].get("ondelete")

    app = make_app(f"sqlite:///{tmp_path / 't.sqlite3'}")
    with app.app_context():
        upgrade()
        assert mentor_column() == (True, "SET NULL")
        db.session.remove()
        downgrade(revision="0026")
        assert mentor_column() == (False, "CASCADE")
        upgrade()
        assert mentor_column() == (True, "SET NULL")
