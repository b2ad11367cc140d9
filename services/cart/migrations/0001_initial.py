"""Carts and cart items, and the messaging tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from services.common.schema import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "carts",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("order_id", UUID(as_uuid=True), unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "cart_items",
        sa.Column("cart_id", UUID(as_uuid=True), sa.ForeignKey("carts.id"), primary_key=True),
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("quantity", sa.Integer, sa.CheckConstraint("quantity > 0"), nullable=False),
        sa.Column("unit_price_cents", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cart_items")
    op.drop_table("carts")
    drop_messaging_tables(op)
