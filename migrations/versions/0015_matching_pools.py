"""Matching pools and quadratic-funding rounds (issue 16): the pool, its
matches (pool money in an item's escrow beside a pledge), round exclusions,
and a pool id on ledger accounts (one pool account, sponsor payments and
sponsor returns per pool). The new account kinds need no change: the kind
column is a plain string.

On this branch it follows 0013; the lead re-chains it after 0014 when merging.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('matching_pool',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('kind', sa.Enum('ratio', 'quadratic', name='poolkind', native_enum=False, length=20), nullable=False),
    sa.Column('state', sa.Enum('awaiting_budget', 'funded', 'ended', 'cancelled', name='poolstate', native_enum=False, length=20), nullable=False),
    sa.Column('sponsor_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('budget_minor', sa.BigInteger(), nullable=False),
    sa.Column('received_minor', sa.BigInteger(), nullable=False),
    sa.Column('returned_minor', sa.BigInteger(), nullable=False),
    sa.Column('rail', sa.String(length=20), nullable=False),
    sa.Column('transfer_reference', sa.String(length=64), nullable=True),
    sa.Column('ratio_percent', sa.Integer(), nullable=False),
    sa.Column('cap_per_pledge_minor', sa.BigInteger(), nullable=True),
    sa.Column('cap_per_funder_minor', sa.BigInteger(), nullable=True),
    sa.Column('cap_per_item_minor', sa.BigInteger(), nullable=True),
    sa.Column('min_pledge_minor', sa.BigInteger(), nullable=True),
    sa.Column('item_cap_bps', sa.Integer(), nullable=True),
    sa.Column('eligible_project_ids', sa.JSON(), nullable=False),
    sa.Column('eligible_sdgs', sa.JSON(), nullable=False),
    sa.Column('eligible_labels', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('funded_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('executed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('budget_minor > 0', name=op.f('ck_matching_pool_budget_positive')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_matching_pool_window_forward')),
    sa.CheckConstraint('item_cap_bps IS NULL OR (item_cap_bps > 0 AND item_cap_bps <= 10000)', name=op.f('ck_matching_pool_item_cap_share')),
    sa.CheckConstraint('ratio_percent > 0', name=op.f('ck_matching_pool_ratio_positive')),
    sa.CheckConstraint('received_minor >= 0 AND returned_minor >= 0', name=op.f('ck_matching_pool_amounts_not_negative')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_matching_pool_organisation_id_organisation'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['sponsor_id'], ['user_account.id'], name=op.f('fk_matching_pool_sponsor_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_matching_pool')),
    sa.UniqueConstraint('transfer_reference', name=op.f('uq_matching_pool_transfer_reference'))
    )
    with op.batch_alter_table('matching_pool', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matching_pool_sponsor_id'), ['sponsor_id'], unique=False)

    op.create_table('pool_round_exclusion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('excluded_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['excluded_by_id'], ['user_account.id'], name=op.f('fk_pool_round_exclusion_excluded_by_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pool_id'], ['matching_pool.id'], name=op.f('fk_pool_round_exclusion_pool_id_matching_pool'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_pool_round_exclusion_user_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_round_exclusion')),
    sa.UniqueConstraint('pool_id', 'user_id', name='uq_pool_round_exclusion_pool_user')
    )
    with op.batch_alter_table('pool_round_exclusion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pool_round_exclusion_pool_id'), ['pool_id'], unique=False)

    op.create_table('pool_match',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=True),
    sa.Column('funder_id', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('returned_minor', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('held', 'released', 'returned', name='matchstate', native_enum=False, length=20), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_pool_match_amount_positive')),
    sa.CheckConstraint('returned_minor >= 0 AND returned_minor <= amount_minor', name=op.f('ck_pool_match_return_within_amount')),
    sa.ForeignKeyConstraint(['funder_id'], ['user_account.id'], name=op.f('fk_pool_match_funder_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_pool_match_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payout_id'], ['payout.id'], name=op.f('fk_pool_match_payout_id_payout'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_pool_match_pledge_id_pledge'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pool_id'], ['matching_pool.id'], name=op.f('fk_pool_match_pool_id_matching_pool'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_match')),
    sa.UniqueConstraint('pool_id', 'pledge_id', name='uq_pool_match_pool_pledge')
    )
    with op.batch_alter_table('pool_match', schema=None) as batch_op:
        batch_op.create_index('ix_pool_match_item_state', ['item_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_pool_match_pledge_id'), ['pledge_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pool_match_pool_id'), ['pool_id'], unique=False)

    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pool_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ledger_account_pool_id'), ['pool_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_ledger_account_pool_id_matching_pool'), 'matching_pool', ['pool_id'], ['id'], ondelete='RESTRICT')



def downgrade():
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ledger_account_pool_id_matching_pool'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_ledger_account_pool_id'))
        batch_op.drop_column('pool_id')

    with op.batch_alter_table('pool_match', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pool_match_pool_id'))
        batch_op.drop_index(batch_op.f('ix_pool_match_pledge_id'))
        batch_op.drop_index('ix_pool_match_item_state')

    op.drop_table('pool_match')
    with op.batch_alter_table('pool_round_exclusion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pool_round_exclusion_pool_id'))

    op.drop_table('pool_round_exclusion')
    with op.batch_alter_table('matching_pool', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matching_pool_sponsor_id'))

    op.drop_table('matching_pool')
