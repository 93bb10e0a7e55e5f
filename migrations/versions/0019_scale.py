"""Public pages at scale (issue 15): the stored ledger summary that
/transparency and /api/v1/ledger read instead of the entries, and the data
version that public pages' ETags and response-cache keys are made from; two
partial indexes on backlog_item for the default list, its count, the
project and SDG filters and the project filter's choices; the label index
covers (name, item_id) so the label filter reads it alone.

The summary's balances are computed here from the entries already posted;
its check result is left for the first run of the hourly reconciliation
(``checked_at`` null: "not checked yet"), except on an empty ledger, which
holds every invariant trivially.

On this branch it follows 0015; the lead re-chains it when merging.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    summary = op.create_table('ledger_summary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('balances', sa.JSON(), nullable=False),
    sa.Column('balances_at', sa.DateTime(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=True),
    sa.Column('violations', sa.Integer(), nullable=False),
    sa.Column('violation_rules', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_summary'))
    )
    version = op.create_table('data_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_version'))
    )
    op.create_index('ix_backlog_item_open', 'backlog_item', ['forge_updated_at', 'id'], unique=False,
                    postgresql_where=sa.text("hidden IS false AND state = 'open' AND solved_by_id IS NULL"),
                    sqlite_where=sa.text("hidden = 0 AND state = 'open' AND solved_by_id IS NULL"))
    op.create_index('ix_backlog_item_visible_repository', 'backlog_item', ['repository_id'], unique=False,
                    postgresql_where=sa.text("hidden IS false"), sqlite_where=sa.text("hidden = 0"))
    op.create_index('ix_backlog_item_open_repository', 'backlog_item', ['repository_id', 'forge_updated_at', 'id'],
                    unique=False,
                    postgresql_where=sa.text("hidden IS false AND state = 'open' AND solved_by_id IS NULL"),
                    sqlite_where=sa.text("hidden = 0 AND state = 'open' AND solved_by_id IS NULL"))
    op.drop_index('ix_item_label_name', table_name='item_label')
    op.create_index('ix_item_label_name', 'item_label', ['name', 'item_id'], unique=False)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = op.get_bind().execute(sa.text(
        "SELECT a.kind, e.currency, SUM(e.amount_minor) FROM ledger_entry e "
        "JOIN ledger_account a ON a.id = e.account_id GROUP BY a.kind, e.currency")).all()
    balances = {}
    for kind, currency, total in rows:
        balances.setdefault(kind, {})[currency] = int(total or 0)
    op.bulk_insert(summary, [{"id": 1, "balances": balances, "balances_at": now,
                              "checked_at": None if rows else now, "violations": 0, "violation_rules": []}])
    op.bulk_insert(version, [{"id": 1, "version": 1, "changed_at": now}])


def downgrade():
    op.drop_index('ix_item_label_name', table_name='item_label')
    op.create_index('ix_item_label_name', 'item_label', ['name'], unique=False)
    op.drop_index('ix_backlog_item_open_repository', table_name='backlog_item')
    op.drop_index('ix_backlog_item_visible_repository', table_name='backlog_item')
    op.drop_index('ix_backlog_item_open', table_name='backlog_item')
    op.drop_table('data_version')
    op.drop_table('ledger_summary')
