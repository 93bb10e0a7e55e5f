"""Claims, certifications, payouts (shares, covered pledges), payout accounts; items open to a team.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('certification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('issued_by_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['issued_by_id'], ['user_account.id'], name=op.f('fk_certification_issued_by_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_certification_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_certification_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certification'))
    )
    op.create_index('ix_certification_user_project', 'certification', ['user_id', 'project_id'], unique=False)
    op.create_table('payout_account',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('rail', sa.Enum('stripe', 'manual', name='payoutrail', native_enum=False, length=20), nullable=False),
    sa.Column('stripe_account_id', sa.String(length=255), nullable=True),
    sa.Column('transfers_active', sa.Boolean(), nullable=False),
    sa.Column('requirements', sa.Text(), nullable=True),
    sa.Column('manual_details', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_payout_account_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_payout_account')),
    sa.UniqueConstraint('stripe_account_id', name=op.f('uq_payout_account_stripe_account_id'))
    )
    op.create_table('claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('claimant_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('plan', sa.Text(), nullable=False),
    sa.Column('estimate_days', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('state', sa.Enum('requested', 'approved', 'submitted', 'completed', 'rejected', 'withdrawn', 'lapsed', name='claimstate', native_enum=False, length=20), nullable=False),
    sa.Column('holding_item_id', sa.Integer(), nullable=True),
    sa.Column('pull_request_id', sa.Integer(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('warned_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('estimate_days > 0 AND estimate_days <= 365', name=op.f('ck_claim_estimate_range')),
    sa.ForeignKeyConstraint(['claimant_id'], ['user_account.id'], name=op.f('fk_claim_claimant_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_claim_decided_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['holding_item_id'], ['backlog_item.id'], name=op.f('fk_claim_holding_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_claim_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_claim_organisation_id_organisation'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pull_request_id'], ['pull_request.id'], name=op.f('fk_claim_pull_request_id_pull_request'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim')),
    sa.UniqueConstraint('holding_item_id', name=op.f('uq_claim_holding_item_id'))
    )
    op.create_index('ix_claim_claimant_state', 'claim', ['claimant_id', 'state'], unique=False)
    op.create_index(op.f('ix_claim_item_id'), 'claim', ['item_id'], unique=False)
    op.create_index('ix_claim_state_deadline', 'claim', ['state', 'deadline'], unique=False)
    op.create_table('payout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.Enum('awaiting_certification', 'proposed', 'approved', 'held', 'executing', 'paid', 'failed', 'cancelled', name='payoutstate', native_enum=False, length=30), nullable=False),
    sa.Column('open_key', sa.String(length=40), nullable=True),
    sa.Column('pull_request_id', sa.Integer(), nullable=True),
    sa.Column('suggested_recipient_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('gross_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_rate_bps', sa.Integer(), nullable=False),
    sa.Column('proposed_at', sa.DateTime(), nullable=False),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('execute_after', sa.DateTime(), nullable=True),
    sa.Column('executed_at', sa.DateTime(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('flagged_at', sa.DateTime(), nullable=True),
    sa.Column('flag_reason', sa.Text(), nullable=True),
    sa.CheckConstraint('gross_minor >= 0 AND fee_minor >= 0 AND fee_minor <= gross_minor', name=op.f('ck_payout_amounts_valid')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user_account.id'], name=op.f('fk_payout_approved_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_payout_item_id_backlog_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pull_request_id'], ['pull_request.id'], name=op.f('fk_payout_pull_request_id_pull_request'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['suggested_recipient_id'], ['user_account.id'], name=op.f('fk_payout_suggested_recipient_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout')),
    sa.UniqueConstraint('open_key', name=op.f('uq_payout_open_key'))
    )
    op.create_index(op.f('ix_payout_item_id'), 'payout', ['item_id'], unique=False)
    op.create_index('ix_payout_state_execute_after', 'payout', ['state', 'execute_after'], unique=False)
    op.create_table('payout_pledge',
    sa.Column('payout_id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['payout_id'], ['payout.id'], name=op.f('fk_payout_pledge_payout_id_payout'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_payout_pledge_pledge_id_pledge'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('payout_id', 'pledge_id', name=op.f('pk_payout_pledge'))
    )
    op.create_index(op.f('ix_payout_pledge_pledge_id'), 'payout_pledge', ['pledge_id'], unique=False)
    op.create_table('payout_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'awaiting_certification', 'awaiting_account', 'awaiting_manual_payout', 'transferring', 'failed', 'paid', 'reversed', name='sharestate', native_enum=False, length=30), nullable=False),
    sa.Column('rail', sa.Enum('stripe', 'manual', name='payoutrail', native_enum=False, length=20), nullable=True),
    sa.Column('stripe_transfer_id', sa.String(length=255), nullable=True),
    sa.Column('manual_reference', sa.String(length=200), nullable=True),
    sa.Column('manual_paid_on', sa.Date(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('refusals', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('told_at', sa.DateTime(), nullable=True),
    sa.Column('refunded_after_minor', sa.BigInteger(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('amount_minor >= 0', name=op.f('ck_payout_share_amount_not_negative')),
    sa.CheckConstraint('weight > 0', name=op.f('ck_payout_share_weight_positive')),
    sa.ForeignKeyConstraint(['payout_id'], ['payout.id'], name=op.f('fk_payout_share_payout_id_payout'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_id'], ['user_account.id'], name=op.f('fk_payout_share_recipient_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_share')),
    sa.UniqueConstraint('payout_id', 'recipient_id', name='uq_payout_share_recipient'),
    sa.UniqueConstraint('stripe_transfer_id', name=op.f('uq_payout_share_stripe_transfer_id'))
    )
    op.create_index(op.f('ix_payout_share_payout_id'), 'payout_share', ['payout_id'], unique=False)
    op.create_index(op.f('ix_payout_share_recipient_id'), 'payout_share', ['recipient_id'], unique=False)
    op.create_index('ix_payout_share_state', 'payout_share', ['state', 'next_attempt_at'], unique=False)
    # Plain ADD/DROP COLUMN (no batch copy on SQLite, which would drop the FTS triggers of 0001/0002).
    op.add_column('backlog_item', sa.Column('open_to_team', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    op.execute("ALTER TABLE backlog_item DROP COLUMN open_to_team")
    op.drop_index('ix_payout_share_state', table_name='payout_share')
    op.drop_index(op.f('ix_payout_share_recipient_id'), table_name='payout_share')
    op.drop_index(op.f('ix_payout_share_payout_id'), table_name='payout_share')
    op.drop_table('payout_share')
    op.drop_index(op.f('ix_payout_pledge_pledge_id'), table_name='payout_pledge')
    op.drop_table('payout_pledge')
    op.drop_index('ix_payout_state_execute_after', table_name='payout')
    op.drop_index(op.f('ix_payout_item_id'), table_name='payout')
    op.drop_table('payout')
    op.drop_index('ix_claim_state_deadline', table_name='claim')
    op.drop_index(op.f('ix_claim_item_id'), table_name='claim')
    op.drop_index('ix_claim_claimant_state', table_name='claim')
    op.drop_table('claim')
    op.drop_table('payout_account')
    op.drop_index('ix_certification_user_project', table_name='certification')
    op.drop_table('certification')
