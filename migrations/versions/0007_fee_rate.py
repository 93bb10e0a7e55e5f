"""Member projects: the commons' fee rate on payouts, in basis points (nullable: the default applies).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("member_project", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fee_rate_bps", sa.Integer(), nullable=True))
        batch_op.create_check_constraint("ck_member_project_fee_rate_range",
                                         "fee_rate_bps IS NULL OR (fee_rate_bps >= 0 AND fee_rate_bps <= 5000)")


def downgrade():
    with op.batch_alter_table("member_project", schema=None) as batch_op:
        batch_op.drop_constraint("ck_member_project_fee_rate_range", type_="check")
        batch_op.drop_column("fee_rate_bps")
