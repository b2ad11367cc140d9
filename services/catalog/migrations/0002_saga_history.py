"""The saga history: published events kept after the outbox lets them go.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from services.common.schema import create_history_table, drop_history_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_history_table(op)


def downgrade() -> None:
    drop_history_table(op)
