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
    """In sandbox mode, /metrics beside the probes on the service's port."""
    runtime = ServiceRuntime(
        settings.model_copy(update={"fault_injection": True}),
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


async def test_outside_sandbox_mode_metrics_and_inflight_are_on_the_internal_port_alone(settings):
    """The world reaches the service's port: there, only the probes and the
    API. /metrics and /inflight answer on SHOP_INTERNAL_PORT (A6-like:
    internals not reachable from outside)."""
    from tests.conftest import free_port

    port = free_port()
    production = settings.model_copy(
        update={"fault_injection": False, "internal_port": port, "internal_host": "127.0.0.1"}
    )
    runtime = ServiceRuntime(production, migrations_dir=FIXTURE_MIGRATIONS)
    app = create_service_app(runtime, title="test")
    async with app.router.lifespan_context(app):  # starts the runtime and the internal port
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as public:
            assert (await public.get("/healthz")).status_code == 200
            assert (await public.get("/metrics")).status_code == 404
            assert (await public.get("/inflight")).status_code == 404
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as internal:
            metrics = await internal.get("/metrics")
            assert metrics.status_code == 200 and "shop_handlers_in_flight" in metrics.text
            inflight = (await internal.get("/inflight")).json()
            assert inflight["service"] == production.service_name and inflight["working"] == []
            assert (await internal.get("/readyz")).status_code == 200
    # stopped with the service: nothing answers on the internal port any more
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as internal:
        with pytest.raises(httpx.ConnectError):
            await internal.get("/metrics", timeout=2)
