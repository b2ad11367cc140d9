"""The orchestrator's sagas: one row per orchestrated order.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sagas",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    # The timers: only sagas still running or compensating have one.
    op.create_index(
        "sagas_timers",
        "sagas",
        ["deadline_at"],
        postgresql_where=sa.text("deadline_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("sagas")
