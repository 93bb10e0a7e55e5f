"""Pledges: amount in minor units, state, rail, expiry and the provider's references.

Reviewed by hand.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pledge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rail', sa.Enum('card', 'bank_transfer', name='rail', native_enum=False, length=20), nullable=False),
    sa.Column('state', sa.Enum('pending', 'processing', 'held', 'partially_refunded', 'refunded', 'released', 'failed', 'cancelled', 'disputed', name='pledgestate', native_enum=False, length=30), nullable=False),
    sa.Column('refunded_minor', sa.BigInteger(), nullable=False),
    sa.Column('show_name', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('transfer_reference', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('held_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_pledge_amount_positive')),
    sa.CheckConstraint('refunded_minor >= 0 AND refunded_minor <= amount_minor', name=op.f('ck_pledge_refund_within_amount')),
    sa.ForeignKeyConstraint(['funder_id'], ['user_account.id'], name=op.f('fk_pledge_funder_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_pledge_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_pledge_organisation_id_organisation'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledge')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_pledge_checkout_session_id')),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_pledge_payment_intent_id')),
    sa.UniqueConstraint('transfer_reference', name=op.f('uq_pledge_transfer_reference'))
    )
    with op.batch_alter_table('pledge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pledge_funder_id'), ['funder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pledge_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_pledge_state_expires', ['state', 'expires_at'], unique=False)



def downgrade():
    with op.batch_alter_table('pledge', schema=None) as batch_op:
        batch_op.drop_index('ix_pledge_state_expires')
        batch_op.drop_index(batch_op.f('ix_pledge_item_id'))
        batch_op.drop_index(batch_op.f('ix_pledge_funder_id'))

    op.drop_table('pledge')
