"""The outbox (issue 23): every outgoing e-mail and notice is stored in the
transaction that causes it and sent from this table, so none is lost while
Redis is down.

On this branch it follows 0015; the lead re-chains it when merging.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('mail', 'notice', name='outboxkind', native_enum=False, length=10), nullable=False),
    sa.Column('state', sa.Enum('waiting', 'sent', 'failed', name='outboxstate', native_enum=False, length=10), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('notice_subject', sa.String(length=20), nullable=True),
    sa.Column('notice_kind', sa.String(length=40), nullable=True),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('figures', sa.JSON(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('sent_count', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message'))
    )
    op.create_index('ix_outbox_message_waiting', 'outbox_message', ['state', 'next_attempt_at'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_message_waiting', table_name='outbox_message')
    op.drop_table('outbox_message')
