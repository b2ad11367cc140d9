"""/healthz, /readyz and /metrics of a service app built on the core."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from services.common.consumer import Subscription
from services.common.events import Envelope, OrderCompleted
from services.common.outbox import UnitOfWork
from services.common.runtime import ServiceRuntime, create_service_app
from tests.conftest import FIXTURE_MIGRATIONS, eventually


async def ignore(event: Envelope[Any], uow: UnitOfWork) -> None:
    return None


async def test_health_readiness_and_metrics(settings, probe_factory):
    runtime = ServiceRuntime(
        settings,
        migrations_dir=FIXTURE_MIGRATIONS,
        subscriptions=[Subscription(OrderCompleted, ignore)],
    )
    app = create_service_app(runtime, title="test")
    probe = await probe_factory("order.completed")
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            assert (await client.get("/healthz")).json()["status"] == "ok"
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {
                "database": "ok",
                "broker": "ok",
                "relay": "ok",
                "consumers": "ok",
            }

            async with runtime.unit_of_work() as uow:
                uow.emit(OrderCompleted(order_id=uuid.uuid4()), correlation_id="m")
            await probe.wait_for(1)

            async def published() -> bool:
                text = (await client.get("/metrics")).text
                return 'shop_events_published_total{event_type="OrderCompleted"} 1.0' in text

            await eventually(published)

            # The consumers are gone (as after a failed recovery): not ready.
            await runtime.consumers.stop()
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["consumers"].startswith("error: no consumer")
    finally:
        await runtime.stop()
