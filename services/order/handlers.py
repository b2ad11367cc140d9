"""Order's part of the saga: create on checkout, follow each step, complete
or cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.common.consumer import Handler, Subscription
from services.common.db import Prepared
from services.common.events import (
    ORCHESTRATED,
    CartCheckedOut,
    Envelope,
    OrderCreated,
    PaymentFailed,
    PaymentSucceeded,
    SagaStepCompensated,
    ShippingCreated,
    StockReservationFailed,
    StockReserved,
)
from services.common.outbox import UnitOfWork

from .domain import OrderStatus, Timeouts, advance, cancel
from .metrics import SagaMetrics
from .models import orders
from .saga import Orchestrator

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

    def __init__(self, timeouts: Timeouts, saga_mode: str = "choreographed") -> None:
        self.settings = timeouts  # what the process was started with
        self.timeout = timeouts
        self.started_mode = saga_mode
        self.saga_mode = saga_mode  # how orders created from now on are run
        self.sagas = SagaMetrics()
        self.orchestrator = Orchestrator(lambda: self.timeout, self.sagas.ended)

    def retune(self, tuning: dict[str, float]) -> None:
        """A scenario's own saga timeouts and mode (sandbox mode), or back to
        the settings when ``tuning`` is empty; orders created from now on get
        them (one in flight keeps the mode it started in)."""
        step = tuning.get("saga_step_timeout_s")
        shipping = tuning.get("saga_shipping_timeout_s", step)
        self.timeout = Timeouts(
            step=timedelta(seconds=step) if step else self.settings.step,
            shipping=timedelta(seconds=shipping) if shipping else self.settings.shipping,
        )
        orchestrated = tuning.get("saga_orchestrated")
        self.saga_mode = (
            self.started_mode
            if orchestrated is None
            else ("orchestrated" if orchestrated else "choreographed")
        )

    async def create_order(self, event: Envelope[CartCheckedOut], uow: UnitOfWork) -> None:
        """The order, run in the mode set now: choreographed, OrderCreated
        starts it (and the order row holds its deadline); orchestrated, the
        orchestrator's saga row and first command do."""
        data = event.data
        orchestrated = self.saga_mode == "orchestrated"
        created = await uow.db.run(
            _CREATE,
            {
                "id": data.order_id,
                "customer_id": data.customer_id,
                "items": [i.model_dump() for i in data.items],
                "total_cents": data.total_cents,
                "currency": data.currency,
                "timeout_s": None if orchestrated else self.timeout.step.total_seconds(),
            },
        )
        if created.first() is None:
            return
        order = OrderCreated(
            order_id=data.order_id,
            customer_id=data.customer_id,
            items=data.items,
            total_cents=data.total_cents,
            currency=data.currency,
            payment=data.payment,
            shipping_address=data.shipping_address,
        )
        if orchestrated:
            await self.orchestrator.start(uow, order)
        else:
            uow.emit(order)

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

    def _either(self, choreographed: Handler) -> Handler:
        """An event's handler under choreography; the orchestrator's reply
        handler for the same event of an orchestrated saga."""

        async def handle(event: Envelope[Any], uow: UnitOfWork) -> None:
            if event.sagamode == ORCHESTRATED:
                await self.orchestrator.reply(event, uow)
            else:
                await choreographed(event, uow)

        return handle

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(CartCheckedOut, self.create_order),
            Subscription(StockReserved, self._either(self.stock_reserved), orchestrated=True),
            Subscription(StockReservationFailed, self._either(self.stock_failed), True),
            Subscription(PaymentSucceeded, self._either(self.paid), orchestrated=True),
            Subscription(PaymentFailed, self._either(self.payment_failed), orchestrated=True),
            Subscription(ShippingCreated, self._either(self.shipped), orchestrated=True),
            Subscription(SagaStepCompensated, self.orchestrator.reply, orchestrated=True),
        ]
