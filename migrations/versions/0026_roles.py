"""Issue 20, each role's home: people follow items without pledging
(``item_follow``), notices sent once per event (``sent_notice``), the fiscal
host's settings kept by an admin (``fiscal_host_setting``), and a firm paid as
a firm (``organisation.payee_id``, ``organisation.legal_name``).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "item_follow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["backlog_item.id"], name=op.f("fk_item_follow_item_id_backlog_item"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_item_follow_user_id_user_account"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_follow")),
        sa.UniqueConstraint("item_id", "user_id", name="uq_item_follow_item_user"),
    )
    op.create_index(op.f("ix_item_follow_item_id"), "item_follow", ["item_id"], unique=False)
    op.create_index(op.f("ix_item_follow_user_id"), "item_follow", ["user_id"], unique=False)
    op.create_table(
        "sent_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_notice")),
        sa.UniqueConstraint("key", name=op.f("uq_sent_notice_key")),
    )
    op.create_table(
        "fiscal_host_setting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("bank_instructions", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["user_account.id"],
                                name=op.f("fk_fiscal_host_setting_updated_by_id_user_account"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fiscal_host_setting")),
    )
    with op.batch_alter_table("organisation") as batch:
        batch.add_column(sa.Column("payee_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("legal_name", sa.String(length=200), nullable=True))
        batch.create_foreign_key(op.f("fk_organisation_payee_id_user_account"), "user_account", ["payee_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_unique_constraint(op.f("uq_organisation_payee_id"), ["payee_id"])


def downgrade():
    with op.batch_alter_table("organisation") as batch:
        batch.drop_constraint(op.f("uq_organisation_payee_id"), type_="unique")
        batch.drop_constraint(op.f("fk_organisation_payee_id_user_account"), type_="foreignkey")
        batch.drop_column("legal_name")
        batch.drop_column("payee_id")
    op.drop_table("fiscal_host_setting")
    op.drop_table("sent_notice")
    op.drop_index(op.f("ix_item_follow_user_id"), table_name="item_follow")
    op.drop_index(op.f("ix_item_follow_item_id"), table_name="item_follow")
    op.drop_table("item_follow")
