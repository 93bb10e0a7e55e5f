"""Ledger: accounts, transactions (unique idempotency key) and signed entries.

Reviewed by hand.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ledger_transaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('memo', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transaction')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_transaction_idempotency_key'))
    )
    with op.batch_alter_table('ledger_transaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_transaction_created_at'), ['created_at'], unique=False)

    op.create_table('ledger_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.Enum('funder_payments', 'item_escrow', 'platform_fees', 'contributor_payable', 'refunds', 'disputes', name='accountkind', native_enum=False, length=30), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_ledger_account_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_ledger_account_user_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_account')),
    sa.UniqueConstraint('code', name=op.f('uq_ledger_account_code'))
    )
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_account_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_account_user_id'), ['user_id'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_account.id'], name=op.f('fk_ledger_entry_account_id_ledger_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_entry_transaction_id_ledger_transaction'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_account_currency', ['account_id', 'currency'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_transaction_id'), ['transaction_id'], unique=False)



def downgrade():
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_transaction_id'))
        batch_op.drop_index('ix_ledger_entry_account_currency')

    op.drop_table('ledger_entry')
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_account_user_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_account_item_id'))

    op.drop_table('ledger_account')
    with op.batch_alter_table('ledger_transaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_transaction_created_at'))

    op.drop_table('ledger_transaction')
