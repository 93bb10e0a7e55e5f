"""Public backlog foundation: member projects, repositories, items, pull requests.

Reviewed by hand. Besides the tables, builds the full-text search of the
backlog, which differs by dialect:
- PostgreSQL: a GIN index on an expression that must stay identical to
  ``marketplace.backlog.search.PG_SEARCH_VECTOR``;
- SQLite: an FTS5 table over title and body, kept in step by triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('member_project',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('website', sa.String(length=2000), nullable=True),
    sa.Column('licences', sa.JSON(), nullable=False),
    sa.Column('types', sa.JSON(), nullable=False),
    sa.Column('sectors', sa.JSON(), nullable=False),
    sa.Column('organisations', sa.JSON(), nullable=False),
    sa.Column('registry_stage', sa.String(length=40), nullable=True),
    sa.Column('registry_status', sa.Enum('active', 'archived', 'excluded', name='registrystatus', native_enum=False, length=20), nullable=False),
    sa.Column('registry_path', sa.String(length=300), nullable=True),
    sa.Column('stage', sa.Enum('nascent', 'proven', 'mature', name='maturitystage', native_enum=False, length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_project')),
    sa.UniqueConstraint('slug', name=op.f('uq_member_project_slug'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('object_type', sa.String(length=50), nullable=False),
    sa.Column('object_id', sa.String(length=100), nullable=True),
    sa.Column('origin', sa.String(length=100), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['user_account.id'], name=op.f('fk_audit_event_actor_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_actor_user_id'), ['actor_user_id'], unique=False)
        batch_op.create_index('ix_audit_event_object', ['object_type', 'object_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('project_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('other_host', 'forge_namespace', name='linkkind', native_enum=False, length=30), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=True),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_project_link_project_id_member_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_link'))
    )
    with op.batch_alter_table('project_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_link_project_id'), ['project_id'], unique=False)

    op.create_table('project_sdg',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('sdg', sa.Integer(), nullable=False),
    sa.Column('evidence_text', sa.Text(), nullable=True),
    sa.Column('evidence_url', sa.String(length=2000), nullable=True),
    sa.CheckConstraint('sdg BETWEEN 1 AND 17', name=op.f('ck_project_sdg_sdg_range')),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_project_sdg_project_id_member_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'sdg', name=op.f('pk_project_sdg'))
    )
    with op.batch_alter_table('project_sdg', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_sdg_sdg'), ['sdg'], unique=False)

    op.create_table('repository',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('forge', sa.Enum('github', 'gitlab', name='forgekind', native_enum=False, length=20), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('path_key', sa.String(length=511), nullable=False),
    sa.Column('forge_id', sa.BigInteger(), nullable=True),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=True),
    sa.Column('default_branch', sa.String(length=255), nullable=True),
    sa.Column('sync_status', sa.Enum('never', 'running', 'ok', 'failed', 'forbidden', name='syncstatus', native_enum=False, length=20), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.Column('sync_cursor', sa.DateTime(), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_repository_project_id_member_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository')),
    sa.UniqueConstraint('host', 'forge_id', name='uq_repository_host_forge_id'),
    sa.UniqueConstraint('host', 'path_key', name='uq_repository_host_path_key')
    )
    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_project_id'), ['project_id'], unique=False)

    op.create_table('backlog_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('forge_host', sa.String(length=255), nullable=False),
    sa.Column('forge_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=1024), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('state', sa.Enum('open', 'closed', name='itemstate', native_enum=False, length=10), nullable=False),
    sa.Column('state_reason', sa.String(length=40), nullable=True),
    sa.Column('author_login', sa.String(length=255), nullable=True),
    sa.Column('author_forge_id', sa.BigInteger(), nullable=True),
    sa.Column('html_url', sa.String(length=2000), nullable=False),
    sa.Column('comments_count', sa.Integer(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('forge_created_at', sa.DateTime(), nullable=False),
    sa.Column('forge_updated_at', sa.DateTime(), nullable=False),
    sa.Column('forge_closed_at', sa.DateTime(), nullable=True),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=True),
    sa.Column('funding_goal_minor', sa.BigInteger(), nullable=True),
    sa.Column('funding_goal_currency', sa.String(length=3), nullable=True),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('funding_goal_minor IS NULL OR funding_goal_minor > 0', name=op.f('ck_backlog_item_funding_goal_positive')),
    sa.ForeignKeyConstraint(['repository_id'], ['repository.id'], name=op.f('fk_backlog_item_repository_id_repository'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backlog_item')),
    sa.UniqueConstraint('forge_host', 'forge_id', name='uq_backlog_item_forge_host_forge_id'),
    sa.UniqueConstraint('repository_id', 'number', name='uq_backlog_item_repository_id_number')
    )
    with op.batch_alter_table('backlog_item', schema=None) as batch_op:
        batch_op.create_index('ix_backlog_item_created', ['forge_created_at', 'id'], unique=False)
        batch_op.create_index('ix_backlog_item_listing', ['hidden', 'state', 'forge_updated_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_backlog_item_repository_id'), ['repository_id'], unique=False)

    op.create_table('pull_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('forge_host', sa.String(length=255), nullable=False),
    sa.Column('forge_id', sa.BigInteger(), nullable=True),
    sa.Column('forge_issue_id', sa.BigInteger(), nullable=True),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=1024), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('state', sa.Enum('open', 'closed', 'merged', name='pullrequeststate', native_enum=False, length=10), nullable=False),
    sa.Column('author_login', sa.String(length=255), nullable=True),
    sa.Column('author_forge_id', sa.BigInteger(), nullable=True),
    sa.Column('base_branch', sa.String(length=255), nullable=True),
    sa.Column('head_repository', sa.String(length=511), nullable=True),
    sa.Column('html_url', sa.String(length=2000), nullable=False),
    sa.Column('forge_created_at', sa.DateTime(), nullable=False),
    sa.Column('forge_updated_at', sa.DateTime(), nullable=False),
    sa.Column('forge_closed_at', sa.DateTime(), nullable=True),
    sa.Column('merged_at', sa.DateTime(), nullable=True),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repository.id'], name=op.f('fk_pull_request_repository_id_repository'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pull_request')),
    sa.UniqueConstraint('repository_id', 'number', name='uq_pull_request_repository_id_number')
    )
    with op.batch_alter_table('pull_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pull_request_repository_id'), ['repository_id'], unique=False)

    op.create_table('repository_alias',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('path_key', sa.String(length=511), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repository.id'], name=op.f('fk_repository_alias_repository_id_repository'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_alias')),
    sa.UniqueConstraint('host', 'path_key', name='uq_repository_alias_host_path_key')
    )
    with op.batch_alter_table('repository_alias', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_alias_repository_id'), ['repository_id'], unique=False)

    op.create_table('item_funding',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('held_minor', sa.BigInteger(), nullable=False),
    sa.Column('pending_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('held_minor >= 0', name=op.f('ck_item_funding_held_not_negative')),
    sa.CheckConstraint('pending_minor >= 0', name=op.f('ck_item_funding_pending_not_negative')),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_item_funding_item_id_backlog_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', 'currency', name=op.f('pk_item_funding'))
    )
    with op.batch_alter_table('item_funding', schema=None) as batch_op:
        batch_op.create_index('ix_item_funding_currency_held', ['currency', 'held_minor'], unique=False)

    op.create_table('item_label',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_item_label_item_id_backlog_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', 'name', name=op.f('pk_item_label'))
    )
    with op.batch_alter_table('item_label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_label_name'), ['name'], unique=False)

    create_search()



PG_SEARCH_INDEX = (
    "CREATE INDEX ix_backlog_item_search ON backlog_item USING gin ("
    "to_tsvector('english', coalesce(backlog_item.title, '') || ' ' || "
    "coalesce(backlog_item.body, '')))"
)

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE backlog_item_fts USING fts5("
    "title, body, content='backlog_item', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
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


def create_search():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_SEARCH_INDEX)
    elif dialect == "sqlite":
        for statement in SQLITE_SEARCH:
            op.execute(statement)


def drop_search():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_backlog_item_search")
    elif dialect == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS backlog_item_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS backlog_item_fts")


def downgrade():
    drop_search()
    with op.batch_alter_table('item_label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_label_name'))

    op.drop_table('item_label')
    with op.batch_alter_table('item_funding', schema=None) as batch_op:
        batch_op.drop_index('ix_item_funding_currency_held')

    op.drop_table('item_funding')
    with op.batch_alter_table('repository_alias', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repository_alias_repository_id'))

    op.drop_table('repository_alias')
    with op.batch_alter_table('pull_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pull_request_repository_id'))

    op.drop_table('pull_request')
    with op.batch_alter_table('backlog_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backlog_item_repository_id'))
        batch_op.drop_index('ix_backlog_item_listing')
        batch_op.drop_index('ix_backlog_item_created')

    op.drop_table('backlog_item')
    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repository_project_id'))

    op.drop_table('repository')
    with op.batch_alter_table('project_sdg', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_sdg_sdg'))

    op.drop_table('project_sdg')
    with op.batch_alter_table('project_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_link_project_id'))

    op.drop_table('project_link')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_occurred_at'))
        batch_op.drop_index('ix_audit_event_object')
        batch_op.drop_index(batch_op.f('ix_audit_event_actor_user_id'))

    op.drop_table('audit_event')
    op.drop_table('user_account')
    op.drop_table('member_project')
