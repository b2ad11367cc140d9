"""The order service: orders and their status machine."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from pydantic import Field

from services.common import tracing
from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings

from . import api, domain, saga
from .handlers import Handlers
from .metrics import SagaMetrics

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


class OrderSettings(ServiceSettings):
    service_name: str = "order"
    order_step_timeout_s: float = Field(
        default=30.0, gt=0, description="how long an order waits for stock or payment"
    )
    order_shipping_timeout_s: float = Field(
        default=60.0, gt=0, description="how long a PAID order waits for its shipment"
    )
    order_timeout_sweep_s: float = Field(default=1.0, gt=0)
    saga: Literal["choreographed", "orchestrated"] = Field(
        default="choreographed",
        description="how orders created from now on are run (SHOP_SAGA; docs/saga.md)",
    )


async def _count_overdue(runtime: ServiceRuntime, sagas: SagaMetrics) -> None:
    async with runtime.engine.connect() as conn:
        sagas.overdue.set(await domain.count_overdue(conn))


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    handlers = Handlers(
        domain.Timeouts(
            step=timedelta(seconds=settings.order_step_timeout_s),
            shipping=timedelta(seconds=settings.order_shipping_timeout_s),
        ),
        settings.saga,
    )

    async def cancel_overdue_orders(runtime: ServiceRuntime) -> None:
        """Cancel orders whose step never answered (stock, payment or
        shipping); inventory and payment compensate on the
        OrderCancelled(timeout) this emits."""
        while True:
            async with runtime.unit_of_work() as uow:
                for order_id in await domain.overdue(uow.conn):
                    # in the order's own trace, as its last step's
                    last = await domain.last_traceparent(uow.conn, order_id)
                    with tracing.step("order timeout", last, order=str(order_id)):
                        await domain.cancel(uow, order_id, "timeout", handlers.sagas.ended)
                        log.info("order %s timed out", order_id, extra={"order": order_id})
            async with runtime.unit_of_work() as uow:  # the orchestrator's timers
                for order_id in await saga.due(uow.conn):
                    last = await domain.last_traceparent(uow.conn, order_id)
                    with tracing.step("saga timer", last, order=str(order_id)):
                        await handlers.orchestrator.expire(uow, order_id)
            await asyncio.sleep(settings.order_timeout_sweep_s)

    runtime = ServiceRuntime(
        settings,
        migrations_dir=MIGRATIONS,
        subscriptions=handlers.subscriptions(),
        background=[cancel_overdue_orders],
    )
    handlers.sagas.register(runtime.metrics.registry)
    runtime.report("saga", lambda: handlers.saga_mode)
    runtime.on_scrape(lambda: _count_overdue(runtime, handlers.sagas))
    if runtime.faults is not None:  # sandbox mode: a scenario may shorten the saga's timeouts
        runtime.faults.on_tuning(handlers.retune)
    return create_service_app(runtime, title="shop order", routers=[api.router])
