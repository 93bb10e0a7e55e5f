"""When each scheduled job last ran, for the in-process scheduler used
without Redis (make run, flask jobs run-due).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "schedule_run",
        sa.Column("name", sa.String(length=80), primary_key=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=500), nullable=True),
    )


def downgrade():
    op.drop_table("schedule_run")
