"""Overload maps to 503 with Retry-After and the error shape, never 500:
a pool with every connection taken (L1), and the admission limit (L2)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter

from services.common.admission import Admission, AdmissionMiddleware
from services.common.http import Runtime
from services.common.runtime import ServiceRuntime, create_service_app
from tests.conftest import FIXTURE_MIGRATIONS

router = APIRouter()


@router.get("/count")
async def count(runtime: Runtime) -> dict[str, int]:
    async with runtime.engine.connect() as conn:
        value = (await conn.execute(sa.text("SELECT 1"))).scalar_one()
    return {"value": value}


async def test_a_pool_with_no_free_connection_answers_503_with_retry_after(settings):
    tight = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 0.2}
    )
    runtime = ServiceRuntime(tight, migrations_dir=FIXTURE_MIGRATIONS)
    app = create_service_app(runtime, title="test", routers=[router])
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            assert (await client.get("/count")).json() == {"value": 1}
            async with runtime.engine.connect():  # the pool's only connection, held
                busy = await client.get("/count")
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert busy.json()["error"]["code"] == "unavailable"
            assert "traceback" not in busy.text.lower()
            assert (await client.get("/count")).status_code == 200  # free again
    finally:
        await runtime.stop()


@pytest.mark.parametrize("queue", [0, 4])
async def test_admission_admits_a_bounded_number_and_refuses_the_rest_quickly(queue):
    release = asyncio.Event()
    entered = 0

    async def slow_app(scope, receive, send):
        nonlocal entered
        entered += 1
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    admission = Admission("the test", limit=3, queue=queue, wait_s=0.3)
    app = AdmissionMiddleware(slow_app, admission, admits=lambda path: path.startswith("/api/"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        calls = [asyncio.create_task(client.get("/api/x")) for _ in range(10)]
        refused = []
        for call in asyncio.as_completed(calls):
            answer = await call
            if answer.status_code == 503:
                refused.append((answer, loop.time() - started))
            if len(refused) == 7:
                release.set()
        answers = [c.result() for c in calls]
    assert entered == 3
    assert sorted(a.status_code for a in answers) == [200] * 3 + [503] * 7
    for answer, waited in refused:
        assert answer.headers["retry-after"] == "1"
        assert answer.json() == {
            "error": {"code": "unavailable", "message": "the test is busy; try again shortly"}
        }
        assert waited < 2.0  # refused within the wait, never left hanging
    assert admission.refused == 7 and admission.waiting == 0
