"""C6, P6, P7: the broker goes away and comes back; nothing committed is lost.

Stops the RabbitMQ application of this machine for a few seconds, so it is
marked and runs last (see tests/conftest.py ordering)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from services.common.consumer import Subscription
from services.common.events import OrderCompleted
from tests.conftest import rabbitmqctl
from tests.integration.test_consumer import Service, count_effect

pytestmark = pytest.mark.restarts_servers


async def commit_orders(service: Service, n: int) -> list[uuid.UUID]:
    ids = []
    for _ in range(n):
        order_id = uuid.uuid4()
        async with service.runtime.unit_of_work() as uow:
            uow.emit(OrderCompleted(order_id=order_id), correlation_id=order_id)
        ids.append(order_id)
    return ids


async def all_handled_once(service: Service, ids: list[uuid.UUID]) -> bool:
    counts = [await service.effects(i) for i in ids]
    assert max(counts) <= 1, f"an effect doubled: {counts}"
    return min(counts) == 1


async def test_relay_and_consumers_resume_after_broker_restart(settings):
    from tests.conftest import eventually

    async with Service(settings, Subscription(OrderCompleted, count_effect)) as service:
        before = await commit_orders(service, 5)
        await eventually(lambda: all_handled_once(service, before))

        await asyncio.to_thread(rabbitmqctl, "stop_app")
        try:
            await eventually(lambda: not service.runtime.broker.is_connected, timeout=10)
            started = time.monotonic()
            during = await commit_orders(service, 5)  # P6: requests still commit
            assert time.monotonic() - started < 2.0
            checks = await service.runtime.readiness()
            assert checks["broker"].startswith("error")
        finally:
            await asyncio.to_thread(rabbitmqctl, "start_app")

        after = await commit_orders(service, 5)
        await eventually(lambda: all_handled_once(service, before + during + after), timeout=60)

        async def consumers_back() -> bool:
            counts = await service.runtime.consumers.consumer_counts()
            return all(n > 0 for n in counts.values())

        await eventually(consumers_back, timeout=30)
        assert await service.runtime.readiness() == {
            "database": "ok",
            "broker": "ok",
            "relay": "ok",
            "consumers": "ok",
        }
