"""Shipping tables: where each order goes (from PaymentSucceeded; a
cancel before it leaves a row with only ``cancelled`` set) and shipments."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

destinations = sa.Table(
    "destinations",
    metadata,
    sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("customer_id", UUID(as_uuid=True)),
    sa.Column("address", JSONB),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
)

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
    sa.Column("tracking_number", sa.Text, nullable=False),
    sa.Column("address", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
