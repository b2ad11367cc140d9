"""Shipping's part of the saga: ship a paid order; call a shipment back when
its order was cancelled (a payment that succeeded too late)."""

from __future__ import annotations

import secrets
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.common.consumer import Subscription
from services.common.events import (
    CartCheckedOut,
    Envelope,
    OrderCancelled,
    PaymentSucceeded,
    ShippingCreated,
)
from services.common.outbox import UnitOfWork

from .models import destinations, shipments


class DestinationNotYetKnown(Exception):
    """PaymentSucceeded came before this service saw the checkout; retried later."""


async def record_destination(event: Envelope[CartCheckedOut], uow: UnitOfWork) -> None:
    data = event.data
    values = {"customer_id": data.customer_id, "address": data.shipping_address.model_dump()}
    await uow.conn.execute(
        insert(destinations)
        .values(order_id=data.order_id, **values)
        .on_conflict_do_update(index_elements=[destinations.c.order_id], set_=values)
    )


async def create_shipment(event: Envelope[PaymentSucceeded], uow: UnitOfWork) -> None:
    order_id = event.data.order_id
    destination = (
        await uow.conn.execute(
            sa.select(destinations).where(destinations.c.order_id == order_id).with_for_update()
        )
    ).first()
    if destination is not None and destination.cancelled:
        return  # the order was cancelled: a late payment is refunded, not shipped
    if destination is None or destination.address is None:
        raise DestinationNotYetKnown(f"no checkout seen yet for order {order_id}")
    shipment_id = uuid.uuid4()
    tracking = "SHP" + secrets.token_hex(6).upper()
    created = await uow.conn.execute(
        insert(shipments)
        .values(
            id=shipment_id,
            order_id=order_id,
            customer_id=destination.customer_id,
            tracking_number=tracking,
            address=destination.address,
            status="CREATED",
        )
        .on_conflict_do_nothing()
        .returning(shipments.c.id)
    )
    if created.first() is None:
        return
    uow.emit(ShippingCreated(order_id=order_id, shipment_id=shipment_id, tracking_number=tracking))


async def order_cancelled(event: Envelope[OrderCancelled], uow: UnitOfWork) -> None:
    order_id = event.data.order_id
    await uow.conn.execute(
        insert(destinations)
        .values(order_id=order_id, cancelled=True)
        .on_conflict_do_update(index_elements=[destinations.c.order_id], set_={"cancelled": True})
    )
    await uow.conn.execute(
        shipments.update()
        .where(shipments.c.order_id == order_id, shipments.c.status == "CREATED")
        .values(status="CANCELLED", updated_at=sa.func.now())
    )


SUBSCRIPTIONS = [
    Subscription(CartCheckedOut, record_destination),
    Subscription(PaymentSucceeded, create_shipment),
    Subscription(OrderCancelled, order_cancelled),
]
