"""The account's preferred language (issue 21): pages and e-mails in it; and
the language of the last page where the person acted, for e-mails when they
chose none.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account') as batch_op:
        batch_op.add_column(sa.Column('preferred_language', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('last_language', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('user_account') as batch_op:
        batch_op.drop_column('last_language')
        batch_op.drop_column('preferred_language')
