"""Order tables."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("items", JSONB, nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("deadline_at", sa.DateTime(timezone=True)),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# One row per orchestrated order (services/order/saga.py): where the saga is,
# what it carries, and its durable timers.
sagas = sa.Table(
    "sagas",
    metadata,
    sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
    # running: waiting on `step`'s reply; compensating: on `step`'s
    # compensation; completed or cancelled: ended
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # optimistic lock
    sa.Column("data", JSONB, nullable=False),  # the checkout, and what replies added
    sa.Column("reason", sa.Text),
    sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline_at", sa.DateTime(timezone=True)),  # the step's timer
    sa.Column("expires_at", sa.DateTime(timezone=True)),  # the order's own deadline
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
