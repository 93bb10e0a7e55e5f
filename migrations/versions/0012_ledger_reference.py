"""Ledger transactions carry a structured reference (a kind and a row id) that
lookups use, instead of matching memo text; the commons' own transfer
reversals recorded with memo 'share:<id>:own-reversal' get their reference.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ledger_transaction") as batch:
        batch.add_column(sa.Column("reference_kind", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("reference_id", sa.Integer(), nullable=True))
        batch.create_index("ix_ledger_transaction_reference", ["reference_kind", "reference_id"])
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, memo FROM ledger_transaction WHERE memo LIKE :pattern"), {"pattern": "share:%:own-reversal"}).all()
    for row_id, memo in rows:
        share_id = memo.split(":")[1]
        if share_id.isdigit():
            bind.execute(sa.text("UPDATE ledger_transaction SET reference_kind = 'own_reversal', "
                                 "reference_id = :share, memo = NULL WHERE id = :id"),
                         {"share": int(share_id), "id": row_id})


def downgrade():
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE ledger_transaction SET memo = :head || reference_id || :tail "
                         "WHERE reference_kind = 'own_reversal'"), {"head": "share:", "tail": ":own-reversal"})
    with op.batch_alter_table("ledger_transaction") as batch:
        batch.drop_index("ix_ledger_transaction_reference")
        batch.drop_column("reference_id")
        batch.drop_column("reference_kind")
