"""Payment tables: what each order was to be charged (from StockReserved)
and the payments made."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

metadata = sa.MetaData()

# One per order, from StockReserved; ``cancelled`` is set by OrderCancelled
# and stops a charge that has not happened yet (or comes late): a cancel
# before the charge leaves a row with only ``cancelled`` set (a tombstone).
intents = sa.Table(
    "intents",
    metadata,
    sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("customer_id", UUID(as_uuid=True)),
    sa.Column("amount_cents", sa.Integer),
    sa.Column("currency", sa.String(3)),
    sa.Column("card_token", sa.Text),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("processor_attempts", sa.Integer, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
