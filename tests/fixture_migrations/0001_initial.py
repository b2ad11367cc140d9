"""A tiny service schema for the messaging core's tests.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from services.common.schema import create_history_table, create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    create_history_table(op)
    op.create_table(
        "effects",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("effects")
