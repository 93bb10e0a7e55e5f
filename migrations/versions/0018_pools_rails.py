"""Matching pools paid by card and returned by the original rail (issue 16):
the pool's Stripe Checkout Session and PaymentIntent, the number of
Checkouts that expired unpaid, and one row per Stripe refund of a pool's
budget back to its sponsor (keyed by its own id at Stripe).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('matching_pool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkout_session_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('payment_intent_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('checkout_attempt', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_matching_pool_checkout_session_id'), ['checkout_session_id'])
        batch_op.create_unique_constraint(batch_op.f('uq_matching_pool_payment_intent_id'), ['payment_intent_id'])

    op.create_table('pool_refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('requested', 'succeeded', 'failed', name='poolrefundstate', native_enum=False, length=20), nullable=False),
    sa.Column('refund_id', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.Column('failed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_pool_refund_amount_positive')),
    sa.ForeignKeyConstraint(['pool_id'], ['matching_pool.id'], name=op.f('fk_pool_refund_pool_id_matching_pool'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_refund')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_pool_refund_refund_id'))
    )
    with op.batch_alter_table('pool_refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pool_refund_pool_id'), ['pool_id'], unique=False)


def downgrade():
    with op.batch_alter_table('pool_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pool_refund_pool_id'))
    op.drop_table('pool_refund')
    with op.batch_alter_table('matching_pool', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_matching_pool_payment_intent_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_matching_pool_checkout_session_id'), type_='unique')
        batch_op.drop_column('checkout_attempt')
        batch_op.drop_column('payment_intent_id')
        batch_op.drop_column('checkout_session_id')
