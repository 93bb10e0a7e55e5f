"""Money follows what Stripe did: a transfer attempt in flight, fee given back
after payout, manual payouts returned, bank transfers of another amount.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payout_share', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfer_in_flight_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('payout', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fee_refunded_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('returned_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('pledge', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pledged_minor', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('pledge', schema=None) as batch_op:
        batch_op.drop_column('pledged_minor')
    with op.batch_alter_table('payout', schema=None) as batch_op:
        batch_op.drop_column('returned_at')
        batch_op.drop_column('fee_refunded_minor')
    with op.batch_alter_table('payout_share', schema=None) as batch_op:
        batch_op.drop_column('transfer_in_flight_at')
