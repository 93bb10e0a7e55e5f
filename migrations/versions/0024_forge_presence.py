"""The commons on the forge (issue 22): opt-in per repository, the living
comment of each item, the record of forge writes, and the comment commands
handled (unique by the comment's forge id).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "forge_presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("gitlab_token_encrypted", sa.Text(), nullable=True),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repository.id"],
                                name=op.f("fk_forge_presence_repository_id_repository"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["changed_by_id"], ["user_account.id"],
                                name=op.f("fk_forge_presence_changed_by_id_user_account"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_presence")),
        sa.UniqueConstraint("repository_id", name=op.f("uq_forge_presence_repository_id")),
    )
    op.create_table(
        "item_presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.Column("comment_url", sa.String(length=2000), nullable=True),
        sa.Column("written_key", sa.String(length=64), nullable=True),
        sa.Column("label_applied", sa.Boolean(), nullable=False),
        sa.Column("reposts", sa.Integer(), nullable=False),
        sa.Column("abandoned_at", sa.DateTime(), nullable=True),
        sa.Column("resume_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("command_note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["backlog_item.id"],
                                name=op.f("fk_item_presence_item_id_backlog_item"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_presence")),
        sa.UniqueConstraint("item_id", name=op.f("uq_item_presence_item_id")),
    )
    op.create_table(
        "forge_write",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("state_key", sa.String(length=64), nullable=True),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["backlog_item.id"],
                                name=op.f("fk_forge_write_item_id_backlog_item"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_write")),
    )
    op.create_index(op.f("ix_forge_write_item_id"), "forge_write", ["item_id"], unique=False)
    op.create_table(
        "forge_command",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(length=20), nullable=False),
        sa.Column("author_forge_id", sa.BigInteger(), nullable=True),
        sa.Column("author_login", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("claim_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("reply_comment_id", sa.BigInteger(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["backlog_item.id"],
                                name=op.f("fk_forge_command_item_id_backlog_item"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_forge_command_user_id_user_account"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["claim_id"], ["claim.id"],
                                name=op.f("fk_forge_command_claim_id_claim"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_delivery.id"],
                                name=op.f("fk_forge_command_delivery_id_webhook_delivery"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_command")),
        sa.UniqueConstraint("host", "comment_id", name="uq_forge_command_host_comment_id"),
    )
    op.create_index(op.f("ix_forge_command_item_id"), "forge_command", ["item_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_forge_command_item_id"), table_name="forge_command")
    op.drop_table("forge_command")
    op.drop_index(op.f("ix_forge_write_item_id"), table_name="forge_write")
    op.drop_table("forge_write")
    op.drop_table("item_presence")
    op.drop_table("forge_presence")
