"""Project funds (issue 18): a member project's fund per currency, its
monthly subscriptions (Stripe Billing or a standing bank transfer), what
each brought in (receipts, once per invoice id or transfer reference), the
allotments of fund money to items' escrow and their attribution to the
subscriptions, the returns to subscribers when a project leaves, and a fund
id on ledger accounts (fund, subscriber payments, subscriber returns and
what the fiscal host kept, per fund). The new account kinds need no change:
the kind column is a plain string.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('project_fund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.Enum('open', 'closed', name='fundstate', native_enum=False, length=20), nullable=False),
    sa.Column('allotment_expiry_days', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('allotment_expiry_days > 0', name=op.f('ck_project_fund_expiry_positive')),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_project_fund_project_id_member_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_fund')),
    sa.UniqueConstraint('project_id', 'currency', name='uq_project_fund_project_currency')
    )
    op.create_index(op.f('ix_project_fund_project_id'), 'project_fund', ['project_id'], unique=False)
    op.create_table('fund_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rail', sa.Enum('card', 'bank_transfer', name='subscriptionrail', native_enum=False, length=20), nullable=False),
    sa.Column('state', sa.Enum('pending', 'active', 'paused', 'cancelled', 'ended', name='subscriptionstate', native_enum=False, length=20), nullable=False),
    sa.Column('show_name', sa.Boolean(), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_subscription_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=True),
    sa.Column('transfer_reference', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('paused_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('last_failed_at', sa.DateTime(), nullable=True),
    sa.Column('last_failed_invoice_id', sa.String(length=255), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_fund_subscription_amount_positive')),
    sa.ForeignKeyConstraint(['fund_id'], ['project_fund.id'], name=op.f('fk_fund_subscription_fund_id_project_fund'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_fund_subscription_organisation_id_organisation'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['user_account.id'], name=op.f('fk_fund_subscription_subscriber_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_subscription')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_fund_subscription_checkout_session_id')),
    sa.UniqueConstraint('stripe_subscription_id', name=op.f('uq_fund_subscription_stripe_subscription_id')),
    sa.UniqueConstraint('transfer_reference', name=op.f('uq_fund_subscription_transfer_reference'))
    )
    op.create_index(op.f('ix_fund_subscription_fund_id'), 'fund_subscription', ['fund_id'], unique=False)
    op.create_index(op.f('ix_fund_subscription_subscriber_id'), 'fund_subscription', ['subscriber_id'], unique=False)
    op.create_table('fund_receipt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded_minor', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_fund_receipt_amount_positive')),
    sa.ForeignKeyConstraint(['fund_id'], ['project_fund.id'], name=op.f('fk_fund_receipt_fund_id_project_fund'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['fund_subscription.id'], name=op.f('fk_fund_receipt_subscription_id_fund_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_receipt')),
    sa.UniqueConstraint('external_id', name=op.f('uq_fund_receipt_external_id'))
    )
    op.create_index('ix_fund_receipt_fund_received', 'fund_receipt', ['fund_id', 'received_at'], unique=False)
    op.create_index(op.f('ix_fund_receipt_subscription_id'), 'fund_receipt', ['subscription_id'], unique=False)
    op.create_table('fund_return',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('rail', sa.Enum('card', 'bank_transfer', name='subscriptionrail', native_enum=False, length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('due', 'returned', name='fundreturnstate', native_enum=False, length=20), nullable=False),
    sa.Column('reference', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('returned_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_fund_return_amount_positive')),
    sa.ForeignKeyConstraint(['fund_id'], ['project_fund.id'], name=op.f('fk_fund_return_fund_id_project_fund'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['fund_subscription.id'], name=op.f('fk_fund_return_subscription_id_fund_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_return')),
    sa.UniqueConstraint('subscription_id', 'number', name='uq_fund_return_pass')
    )
    op.create_index(op.f('ix_fund_return_fund_id'), 'fund_return', ['fund_id'], unique=False)
    op.create_table('fund_allotment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('maintainer_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('request_key', sa.String(length=64), nullable=True),
    sa.Column('state', sa.Enum('held', 'released', 'returned', name='allotmentstate', native_enum=False, length=20), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('returned_at', sa.DateTime(), nullable=True),
    sa.Column('return_reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_fund_allotment_amount_positive')),
    sa.ForeignKeyConstraint(['fund_id'], ['project_fund.id'], name=op.f('fk_fund_allotment_fund_id_project_fund'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_fund_allotment_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['maintainer_id'], ['user_account.id'], name=op.f('fk_fund_allotment_maintainer_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payout_id'], ['payout.id'], name=op.f('fk_fund_allotment_payout_id_payout'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_allotment')),
    sa.UniqueConstraint('request_key', name=op.f('uq_fund_allotment_request_key'))
    )
    op.create_index(op.f('ix_fund_allotment_fund_id'), 'fund_allotment', ['fund_id'], unique=False)
    op.create_index('ix_fund_allotment_item_state', 'fund_allotment', ['item_id', 'state'], unique=False)
    op.create_table('fund_allotment_attribution',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('allotment_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_fund_allotment_attribution_amount_positive')),
    sa.ForeignKeyConstraint(['allotment_id'], ['fund_allotment.id'], name=op.f('fk_fund_allotment_attribution_allotment_id_fund_allotment'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['fund_subscription.id'], name=op.f('fk_fund_allotment_attribution_subscription_id_fund_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_allotment_attribution')),
    sa.UniqueConstraint('allotment_id', 'subscription_id', name='uq_fund_attribution')
    )
    op.create_index(op.f('ix_fund_allotment_attribution_subscription_id'), 'fund_allotment_attribution', ['subscription_id'], unique=False)
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fund_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ledger_account_fund_id'), ['fund_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_ledger_account_fund_id_project_fund'), 'project_fund', ['fund_id'], ['id'], ondelete='RESTRICT')


def downgrade():
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ledger_account_fund_id_project_fund'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_ledger_account_fund_id'))
        batch_op.drop_column('fund_id')
    op.drop_index(op.f('ix_fund_allotment_attribution_subscription_id'), table_name='fund_allotment_attribution')
    op.drop_table('fund_allotment_attribution')
    op.drop_index('ix_fund_allotment_item_state', table_name='fund_allotment')
    op.drop_index(op.f('ix_fund_allotment_fund_id'), table_name='fund_allotment')
    op.drop_table('fund_allotment')
    op.drop_index(op.f('ix_fund_return_fund_id'), table_name='fund_return')
    op.drop_table('fund_return')
    op.drop_index(op.f('ix_fund_receipt_subscription_id'), table_name='fund_receipt')
    op.drop_index('ix_fund_receipt_fund_received', table_name='fund_receipt')
    op.drop_table('fund_receipt')
    op.drop_index(op.f('ix_fund_subscription_subscriber_id'), table_name='fund_subscription')
    op.drop_index(op.f('ix_fund_subscription_fund_id'), table_name='fund_subscription')
    op.drop_table('fund_subscription')
    op.drop_index(op.f('ix_project_fund_project_id'), table_name='project_fund')
    op.drop_table('project_fund')
