"""Inventory's part of the saga. Choreographed: reserve on OrderCreated,
release on PaymentFailed or OrderCancelled, ship on ShippingCreated.
Orchestrated: the same functions on ReserveStock, ReleaseStock and ShipStock."""

from __future__ import annotations

from typing import Any

from services.common.consumer import Subscription
from services.common.events import (
    Envelope,
    LineItem,
    OrderCancelled,
    OrderCreated,
    PaymentFailed,
    ProductCreated,
    ReleaseStock,
    ReserveStock,
    ShippingCreated,
    ShipStock,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from services.common.outbox import UnitOfWork
from services.common.sagas import choreographed, compensating

from . import domain


class Handlers:
    """Inventory's handlers; they hold no settings."""

    async def create_stock(self, event: Envelope[ProductCreated], uow: UnitOfWork) -> None:
        await domain.create_stock(uow.conn, event.data.sku, event.data.initial_stock)

    async def reserve_stock(self, event: Envelope[OrderCreated], uow: UnitOfWork) -> None:
        order_id = event.data.order_id
        if not await domain.claim(uow.db, order_id, "PENDING"):
            return  # released before it was reserved (a tombstone), or already decided
        lines = domain.merge_lines(event.data.items)
        short = await domain.reserve(uow.db, lines) if lines else ["(no items)"]
        if short:
            await domain.record(uow.db, order_id, "FAILED", lines)
            uow.emit(StockReservationFailed(order_id=order_id, reason="out_of_stock", skus=short))
            return
        await domain.record(uow.db, order_id, "RESERVED", lines)
        data = event.data
        uow.emit(
            StockReserved(
                order_id=order_id,
                items=data.items,
                customer_id=data.customer_id,
                total_cents=data.total_cents,
                currency=data.currency,
                payment=data.payment,
                shipping_address=data.shipping_address,
            )
        )

    async def release_stock(self, event: Envelope[Any], uow: UnitOfWork) -> None:
        """Compensation: give a reservation back exactly once. A release that
        arrives before the reservation leaves a tombstone so the reservation is
        never made; a release after shipping calls the shipment's stock back."""
        order_id = event.data.order_id
        if await domain.claim(uow.db, order_id, "RELEASED"):
            return  # nothing was reserved yet: the tombstone keeps it that way
        status, lines = await domain.reservation(uow.db, order_id) or (None, [])
        if status == "RESERVED":
            await domain.move(uow.db, lines, "reserved", "available")
        elif status == "SHIPPED":
            await domain.move(uow.db, lines, "shipped", "available")
        else:
            return  # FAILED or RELEASED: nothing is held
        await domain.record(uow.db, order_id, "RELEASED", lines)
        uow.emit(
            StockReleased(order_id=order_id, items=[LineItem(sku=s, quantity=q) for s, q in lines])
        )

    async def ship_stock(self, event: Envelope[Any], uow: UnitOfWork) -> None:
        order_id = event.data.order_id
        status, lines = await domain.reservation(uow.db, order_id) or (None, [])
        if status != "RESERVED":
            return  # released meanwhile (the order was cancelled): nothing to ship
        await domain.move(uow.db, lines, "reserved", "shipped")
        await domain.record(uow.db, order_id, "SHIPPED", lines)

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(ProductCreated, self.create_stock),
            Subscription(OrderCreated, choreographed(self.reserve_stock)),
            Subscription(PaymentFailed, choreographed(self.release_stock)),
            Subscription(OrderCancelled, choreographed(self.release_stock)),
            Subscription(ShippingCreated, choreographed(self.ship_stock)),
            # orchestrated: the same functions on the orchestrator's commands
            Subscription(ReserveStock, self.reserve_stock),
            Subscription(ReleaseStock, compensating(self.release_stock)),
            Subscription(ShipStock, self.ship_stock),
        ]
