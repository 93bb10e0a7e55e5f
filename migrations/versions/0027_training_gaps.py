"""Issue 19's gaps: a mentor's recorded reviews outlive their account.

``mentor_review.mentor_id`` becomes nullable with ``ON DELETE SET NULL``
(it cascaded: deleting a mentor's account erased the reviews they gave,
and with them the record of how a trainee's change was approved).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

FK = "fk_mentor_review_mentor_id_user_account"


def upgrade():
    with op.batch_alter_table("mentor_review") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.alter_column("mentor_id", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key(FK, "user_account", ["mentor_id"], ["id"], ondelete="SET NULL")


def downgrade():
    # Reviews whose mentor's account is gone cannot name one again: they go, as they did before.
    op.execute("DELETE FROM mentor_review WHERE mentor_id IS NULL")
    with op.batch_alter_table("mentor_review") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.alter_column("mentor_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(FK, "user_account", ["mentor_id"], ["id"], ondelete="CASCADE")
