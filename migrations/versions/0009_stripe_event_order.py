"""Refunds that Stripe reports failed after they were made (one row per refund id).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pledge_refund_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.String(length=255), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('failed_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_pledge_refund_failure_pledge_id_pledge'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledge_refund_failure')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_pledge_refund_failure_refund_id'))
    )
    op.create_index(op.f('ix_pledge_refund_failure_pledge_id'), 'pledge_refund_failure', ['pledge_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_pledge_refund_failure_pledge_id'), table_name='pledge_refund_failure')
    op.drop_table('pledge_refund_failure')
