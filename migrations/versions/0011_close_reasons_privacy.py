"""Close reasons and privacy: where a closed item's work went (the forge's
moved/duplicate target, or a maintainer's link), a maintainer's decision on
a close reason the forge did not explain, why an item is withheld from the
public (confidential issue, non-public repository) and since when, and each
repository's visibility.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# On SQLite, batch mode rebuilds backlog_item, which drops the triggers that
# keep the FTS5 index of migration 0001 in step: created again as in 0002.
SQLITE_TRIGGERS = [
    "CREATE TRIGGER backlog_item_fts_insert AFTER INSERT ON backlog_item BEGIN "
    "INSERT INTO backlog_item_fts(rowid, title, body) VALUES (new.id, new.title, coalesce(new.body, '')); END",
    "CREATE TRIGGER backlog_item_fts_delete AFTER DELETE ON backlog_item BEGIN "
    "INSERT INTO backlog_item_fts(backlog_item_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, coalesce(old.body, '')); END",
    "CREATE TRIGGER backlog_item_fts_update AFTER UPDATE OF title, body ON backlog_item BEGIN "
    "INSERT INTO backlog_item_fts(backlog_item_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, coalesce(old.body, '')); "
    "INSERT INTO backlog_item_fts(rowid, title, body) VALUES (new.id, new.title, coalesce(new.body, '')); END",
]


def restore_sqlite_search():
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS backlog_item_fts_{trigger}")
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO backlog_item_fts(backlog_item_fts) VALUES ('rebuild')")


def upgrade():
    with op.batch_alter_table("backlog_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("close_target_forge_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("close_target_item_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("close_decision", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("private_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("private_since", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_backlog_item_close_target_item_id_backlog_item"),
                                    "backlog_item", ["close_target_item_id"], ["id"], ondelete="SET NULL")
    restore_sqlite_search()
    with op.batch_alter_table("repository", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visibility", sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table("repository", schema=None) as batch_op:
        batch_op.drop_column("visibility")
    with op.batch_alter_table("backlog_item", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_backlog_item_close_target_item_id_backlog_item"),
                                 type_="foreignkey")
        batch_op.drop_column("private_since")
        batch_op.drop_column("private_reason")
        batch_op.drop_column("close_decision")
        batch_op.drop_column("close_target_item_id")
        batch_op.drop_column("close_target_forge_id")
    restore_sqlite_search()
