"""Shipping's part of the saga: ship a paid order; call a shipment back when
its order was cancelled (a payment that succeeded too late). Orchestrated:
the same functions on CreateShipment and CancelShipment."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.common.consumer import Subscription
from services.common.db import Prepared
from services.common.events import (
    CancelShipment,
    CreateShipment,
    Envelope,
    OrderCancelled,
    PaymentSucceeded,
    ShippingCreated,
)
from services.common.outbox import UnitOfWork
from services.common.sagas import choreographed, compensating

from .models import destinations, shipments


class NoDestination(Exception):
    """A PaymentSucceeded without the address and customer it should carry."""


# Records where PaymentSucceeded asks to ship and takes the destination's row
# lock (making the row when OrderCancelled has not): a shipment and a cancel
# of one order run one after the other. Built once (docs/performance-journal.md).
_destination = insert(destinations).values(
    order_id=sa.bindparam("order_id"),
    customer_id=sa.bindparam("customer_id"),
    address=sa.bindparam("address", type_=destinations.c.address.type),
)
_RECORD_DESTINATION = Prepared(
    _destination.on_conflict_do_update(
        index_elements=[destinations.c.order_id],
        set_={
            "customer_id": _destination.excluded.customer_id,
            "address": _destination.excluded.address,
        },
    ).returning(destinations.c.cancelled)
)
_CREATE_SHIPMENT = Prepared(
    insert(shipments)
    .values(
        id=sa.bindparam("id"),
        order_id=sa.bindparam("order_id"),
        customer_id=sa.bindparam("customer_id"),
        tracking_number=sa.bindparam("tracking_number"),
        address=sa.bindparam("address", type_=shipments.c.address.type),
        status="CREATED",
    )
    .on_conflict_do_nothing()
    .returning(shipments.c.id)
)


class Handlers:
    """Shipping's handlers; they hold no settings."""

    async def create_shipment(self, event: Envelope[PaymentSucceeded], uow: UnitOfWork) -> None:
        data = event.data
        order_id = data.order_id
        if data.shipping_address is None or data.customer_id is None:
            # Made to API.md's table alone (say, injected by hand): retried, then
            # dead-lettered; the order's PAID deadline cancels and refunds it.
            raise NoDestination(
                f"PaymentSucceeded for order {order_id} carries no shipping address"
            )
        address = data.shipping_address.model_dump()
        cancelled = (
            await uow.db.run(
                _RECORD_DESTINATION,
                {"order_id": order_id, "customer_id": data.customer_id, "address": address},
            )
        ).scalar_one()
        if cancelled:
            return  # the order was cancelled: a late payment is refunded, not shipped
        shipment_id = uuid.uuid4()
        tracking = "SHP" + secrets.token_hex(6).upper()
        created = await uow.db.run(
            _CREATE_SHIPMENT,
            {
                "id": shipment_id,
                "order_id": order_id,
                "customer_id": data.customer_id,
                "tracking_number": tracking,
                "address": address,
            },
        )
        if created.first() is None:
            return
        uow.emit(
            ShippingCreated(order_id=order_id, shipment_id=shipment_id, tracking_number=tracking)
        )

    async def order_cancelled(self, event: Envelope[Any], uow: UnitOfWork) -> None:
        order_id = event.data.order_id
        await uow.conn.execute(
            insert(destinations)
            .values(order_id=order_id, cancelled=True)
            .on_conflict_do_update(
                index_elements=[destinations.c.order_id], set_={"cancelled": True}
            )
        )
        await uow.conn.execute(
            shipments.update()
            .where(shipments.c.order_id == order_id, shipments.c.status == "CREATED")
            .values(status="CANCELLED", updated_at=sa.func.now())
        )

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(PaymentSucceeded, choreographed(self.create_shipment)),
            Subscription(OrderCancelled, choreographed(self.order_cancelled)),
            # orchestrated: the same functions on the orchestrator's commands
            Subscription(CreateShipment, self.create_shipment),
            Subscription(CancelShipment, compensating(self.order_cancelled)),
        ]


# Consumed once, no more: the service deletes their queues at start
# (CartCheckedOut: before its amount and address came with the saga's events).
RETIRED = ("cart.checked_out",)
