"""Forge sync: webhook deliveries, HTTP cache (ETags), sync runs, item aliases and links.

Reviewed by hand. New NOT NULL booleans get a server default so that the
upgrade works on a database that already holds rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


# On SQLite, batch mode rebuilds backlog_item (copy, drop, rename), which drops
# the triggers that keep the FTS5 index of migration 0001 in step. They are
# created again, as in 0001, and the index rebuilt from the table.
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
    op.create_table('http_cache_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('etag', sa.String(length=255), nullable=False),
    sa.Column('next_url', sa.String(length=2000), nullable=True),
    sa.Column('max_updated_at', sa.DateTime(), nullable=True),
    sa.Column('stored_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_http_cache_entry')),
    sa.UniqueConstraint('url', name=op.f('uq_http_cache_entry_url'))
    )
    op.create_table('sync_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'waiting', 'done', 'failed', name='syncrunstatus', native_enum=False, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('not_modified', sa.Integer(), nullable=False),
    sa.Column('items_seen', sa.Integer(), nullable=False),
    sa.Column('pull_requests_seen', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('resume_at', sa.DateTime(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['repository_id'], ['repository.id'], name=op.f('fk_sync_run_repository_id_repository'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_run'))
    )
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_run_repository_id'), ['repository_id'], unique=False)

    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'processed', 'ignored', 'failed', name='deliverystatus', native_enum=False, length=20), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('repository_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['repository_id'], ['repository.id'], name=op.f('fk_webhook_delivery_repository_id_repository'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
    sa.UniqueConstraint('source', 'delivery_id', name='uq_webhook_delivery_source_delivery_id')
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_received', ['received_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_delivery_repository_id'), ['repository_id'], unique=False)

    op.create_table('item_alias',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('forge_host', sa.String(length=255), nullable=False),
    sa.Column('forge_id', sa.BigInteger(), nullable=False),
    sa.Column('repository_full_name', sa.String(length=511), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('html_url', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_item_alias_item_id_backlog_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_alias')),
    sa.UniqueConstraint('forge_host', 'forge_id', name='uq_item_alias_forge_host_forge_id')
    )
    with op.batch_alter_table('item_alias', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_alias_item_id'), ['item_id'], unique=False)

    op.create_table('item_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pull_request_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('target_host', sa.String(length=255), nullable=False),
    sa.Column('target_path', sa.String(length=511), nullable=False),
    sa.Column('target_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('closes', 'cross_project', 'mention', name='linkkind', native_enum=False, length=20), nullable=False),
    sa.Column('source', sa.Enum('keyword', 'manual', name='linksource', native_enum=False, length=20), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_item_link_item_id_backlog_item'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pull_request_id'], ['pull_request.id'], name=op.f('fk_item_link_pull_request_id_pull_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_link')),
    sa.UniqueConstraint('pull_request_id', 'target_host', 'target_path', 'target_number', name='uq_item_link_target')
    )
    with op.batch_alter_table('item_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_link_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_link_pull_request_id'), ['pull_request_id'], unique=False)

    with op.batch_alter_table('backlog_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('solved_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_backlog_item_solved_by_id'), ['solved_by_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_backlog_item_solved_by_id_pull_request'), 'pull_request', ['solved_by_id'], ['id'], ondelete='SET NULL', use_alter=True)

    restore_sqlite_search()

    with op.batch_alter_table('pull_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author_deleted', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('links_frozen_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pulls_disabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('installation_id', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.drop_column('installation_id')
        batch_op.drop_column('pulls_disabled')

    with op.batch_alter_table('pull_request', schema=None) as batch_op:
        batch_op.drop_column('links_frozen_at')
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('author_deleted')

    with op.batch_alter_table('backlog_item', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_backlog_item_solved_by_id_pull_request'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_backlog_item_solved_by_id'))
        batch_op.drop_column('solved_by_id')
        batch_op.drop_column('deleted_at')
    restore_sqlite_search()

    with op.batch_alter_table('item_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_link_pull_request_id'))
        batch_op.drop_index(batch_op.f('ix_item_link_item_id'))

    op.drop_table('item_link')
    with op.batch_alter_table('item_alias', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_alias_item_id'))

    op.drop_table('item_alias')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_delivery_repository_id'))
        batch_op.drop_index('ix_webhook_delivery_received')

    op.drop_table('webhook_delivery')
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_run_repository_id'))

    op.drop_table('sync_run')
    op.drop_table('http_cache_entry')
