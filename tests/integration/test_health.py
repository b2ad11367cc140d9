"""/healthz, /readyz and /metrics of a service app built on the core."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest

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


async def test_a_service_waits_for_its_database_then_gives_up_at_its_deadline(settings):
    from tests.conftest import free_port

    nowhere = settings.model_copy(
        update={
            "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
            "db_startup_timeout_s": 1.5,
        }
    )
    runtime = ServiceRuntime(nowhere, migrations_dir=FIXTURE_MIGRATIONS)
    started = asyncio.get_running_loop().time()
    with pytest.raises(psycopg.OperationalError):
        await runtime.start()
    waited = asyncio.get_running_loop().time() - started
    assert 1.5 <= waited < 6
    await runtime.stop()
