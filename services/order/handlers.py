"""Order's part of the saga: create on checkout, follow each step, complete
or cancel."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.common.consumer import Subscription
from services.common.db import Prepared
from services.common.events import (
    CartCheckedOut,
    Envelope,
    OrderCreated,
    PaymentFailed,
    PaymentSucceeded,
    ShippingCreated,
    StockReservationFailed,
    StockReserved,
)
from services.common.outbox import UnitOfWork

from .domain import OrderStatus, Timeouts, advance, cancel
from .metrics import SagaMetrics
from .models import orders

# Built once (docs/performance-journal.md).
_CREATE = Prepared(
    insert(orders)
    .values(
        id=sa.bindparam("id"),
        customer_id=sa.bindparam("customer_id"),
        status=OrderStatus.PENDING,
        items=sa.bindparam("items", type_=orders.c["items"].type),
        total_cents=sa.bindparam("total_cents"),
        currency=sa.bindparam("currency"),
        deadline_at=sa.func.now()
        + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("timeout_s", type_=sa.Float)),
    )
    .on_conflict_do_nothing()
    .returning(orders.c.id)
)


class Handlers:
    """Handlers bound to the order timeout settings."""

    def __init__(self, timeouts: Timeouts) -> None:
        self.settings = timeouts  # what the process was started with
        self.timeout = timeouts
        self.sagas = SagaMetrics()

    def retune(self, tuning: dict[str, float]) -> None:
        """A scenario's own saga timeouts (sandbox mode), or back to the
        settings when ``tuning`` is empty; orders created from now on get them."""
        step = tuning.get("saga_step_timeout_s")
        shipping = tuning.get("saga_shipping_timeout_s", step)
        self.timeout = Timeouts(
            step=timedelta(seconds=step) if step else self.settings.step,
            shipping=timedelta(seconds=shipping) if shipping else self.settings.shipping,
        )

    async def create_order(self, event: Envelope[CartCheckedOut], uow: UnitOfWork) -> None:
        data = event.data
        created = await uow.db.run(
            _CREATE,
            {
                "id": data.order_id,
                "customer_id": data.customer_id,
                "items": [i.model_dump() for i in data.items],
                "total_cents": data.total_cents,
                "currency": data.currency,
                "timeout_s": self.timeout.step.total_seconds(),
            },
        )
        if created.first() is None:
            return
        uow.emit(
            OrderCreated(
                order_id=data.order_id,
                customer_id=data.customer_id,
                items=data.items,
                total_cents=data.total_cents,
                currency=data.currency,
                payment=data.payment,
                shipping_address=data.shipping_address,
            )
        )

    async def stock_reserved(self, event: Envelope[StockReserved], uow: UnitOfWork) -> None:
        await advance(uow, event.data.order_id, OrderStatus.STOCK_RESERVED, self.timeout)

    async def stock_failed(self, event: Envelope[StockReservationFailed], uow: UnitOfWork) -> None:
        await cancel(uow, event.data.order_id, "out_of_stock", self.sagas.ended)

    async def paid(self, event: Envelope[PaymentSucceeded], uow: UnitOfWork) -> None:
        await advance(uow, event.data.order_id, OrderStatus.PAID, self.timeout)

    async def payment_failed(self, event: Envelope[PaymentFailed], uow: UnitOfWork) -> None:
        await cancel(uow, event.data.order_id, "payment_declined", self.sagas.ended)

    async def shipped(self, event: Envelope[ShippingCreated], uow: UnitOfWork) -> None:
        await advance(
            uow, event.data.order_id, OrderStatus.COMPLETED, self.timeout, self.sagas.ended
        )

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(CartCheckedOut, self.create_order),
            Subscription(StockReserved, self.stock_reserved),
            Subscription(StockReservationFailed, self.stock_failed),
            Subscription(PaymentSucceeded, self.paid),
            Subscription(PaymentFailed, self.payment_failed),
            Subscription(ShippingCreated, self.shipped),
        ]
