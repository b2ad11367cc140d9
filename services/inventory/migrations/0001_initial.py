"""Stock and reservations, and the messaging tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.schema import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text, primary_key=True),
        # The database itself refuses an oversell, whatever the code does.
        sa.Column("available", sa.Integer, sa.CheckConstraint("available >= 0"), nullable=False),
        sa.Column("reserved", sa.Integer, sa.CheckConstraint("reserved >= 0"), nullable=False),
        sa.Column("shipped", sa.Integer, sa.CheckConstraint("shipped >= 0"), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("items", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("stock")
    drop_messaging_tables(op)
