"""The order stream waits a moment for an order placed an instant ago
(it is created asynchronously after checkout's 202), and for the terminal
event of an order the database already calls over."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.common.identity import Caller
from services.gateway.app import create_app
from services.gateway.auth import issue_token
from services.gateway.settings import GatewaySettings
from tests.http_server import ServedApp


class SlowOrderService(ServedApp):
    """A real HTTP server answering 404 until the order 'exists'."""

    def __init__(
        self, found_after: int, status: str = "COMPLETED", updated_at: str | None = None
    ) -> None:
        self.calls = 0
        self.found_after = found_after
        self.read_twice = threading.Event()
        app = FastAPI()

        @app.get("/orders/{order_id}")
        async def order(order_id: str) -> JSONResponse:
            self.calls += 1
            if self.calls == found_after + 2:
                self.read_twice.set()
            if self.calls <= self.found_after:
                return JSONResponse({"error": {"code": "not_found", "message": "no"}}, 404)
            return JSONResponse({"id": order_id, "status": status, "updated_at": updated_at})

        super().__init__(app)


@pytest.mark.parametrize(("found_after", "expected"), [(3, 200), (10_000, 404)])
async def test_stream_waits_briefly_for_a_just_placed_order(found_after, expected):
    with SlowOrderService(found_after) as orders:
        settings = GatewaySettings(
            order_url=f"http://127.0.0.1:{orders.port}",
            stream_order_wait_s=0.5,
            fault_injection=True,  # sandbox mode: its secret (the start refuses it outside)
        )
        app = create_app(settings)  # no lifespan: the stream needs no broker for this
        token = issue_token(settings, Caller(uuid.uuid4(), "customer"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            started = time.monotonic()
            async with client.stream(
                "GET",
                f"/api/orders/{uuid.uuid4()}/stream",
                headers={"Authorization": f"Bearer {token}"},
            ) as answer:
                body = (await answer.aread()).decode()
            waited = time.monotonic() - started
        await app.state.http.close()
    assert answer.status_code == expected
    if expected == 200:
        assert "event: snapshot" in body and orders.calls == found_after + 2
    else:
        assert 0.5 <= waited < 5 and '"not_found"' in body


def saga_event(saga: str, kind: str) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "type": kind, "correlationid": saga}


@pytest.mark.parametrize("seen_before", [True, False])
async def test_an_order_over_in_the_database_waits_for_its_last_events(seen_before):
    """The order's row says CANCELLED before its OrderCancelled (published
    after the commit) reaches the gateway: a stream opened in between still
    carries it and the compensation after it. An order this gateway saw none
    of ends with the snapshot at once."""
    with SlowOrderService(0, status="CANCELLED") as orders:
        settings = GatewaySettings(
            order_url=f"http://127.0.0.1:{orders.port}", stream_linger_s=0.5, fault_injection=True
        )
        app = create_app(settings)
        order_id = str(uuid.uuid4())
        broadcaster = app.state.broadcaster
        if seen_before:
            for kind in ("OrderCreated", "StockReserved", "PaymentFailed"):
                broadcaster.deliver(order_id, saga_event(order_id, kind))

        async def the_last_events_arrive() -> None:
            await asyncio.to_thread(orders.read_twice.wait, 5)  # the snapshot, read while watching
            await asyncio.sleep(0.1)
            for kind in ("OrderCancelled", "StockReleased"):
                broadcaster.deliver(order_id, saga_event(order_id, kind))

        token = issue_token(settings, Caller(uuid.uuid4(), "customer"))
        transport = httpx.ASGITransport(app=app)
        late = asyncio.create_task(the_last_events_arrive())
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            started = time.monotonic()
            answer = await client.get(
                f"/api/orders/{order_id}/stream", headers={"Authorization": f"Bearer {token}"}
            )
            took = time.monotonic() - started
        late.cancel()
        await app.state.http.close()
    lines = answer.text.splitlines()
    kinds = [line[len("event: ") :] for line in lines if line.startswith("event:")]
    if seen_before:
        assert kinds == [
            "snapshot",
            "OrderCreated",
            "StockReserved",
            "PaymentFailed",
            "OrderCancelled",
            "StockReleased",
        ]
        assert 0.5 <= took < 3  # the linger after OrderCancelled, then the end
    else:
        assert kinds == ["snapshot"] and took < 0.5


async def test_an_order_that_just_ended_waits_for_the_steps_the_reading_replays():
    """The order completed an instant before its page opened, and the first
    watcher's reading (from a few seconds back) brings its steps only after
    the snapshot was read: the stream carries them (it ended with the
    snapshot alone, and the page never showed its steps: CI's browser test)."""
    just_now = datetime.now(UTC).isoformat()
    with SlowOrderService(0, status="COMPLETED", updated_at=just_now) as orders:
        settings = GatewaySettings(
            order_url=f"http://127.0.0.1:{orders.port}", stream_linger_s=0.5, fault_injection=True
        )
        app = create_app(settings)
        order_id = str(uuid.uuid4())
        broadcaster = app.state.broadcaster

        async def the_replay_arrives() -> None:
            await asyncio.to_thread(orders.read_twice.wait, 5)  # the snapshot, read while watching
            await asyncio.sleep(0.1)
            for kind in ("OrderCreated", "StockReserved", "OrderCompleted"):
                broadcaster.deliver(order_id, saga_event(order_id, kind))

        token = issue_token(settings, Caller(uuid.uuid4(), "customer"))
        transport = httpx.ASGITransport(app=app)
        late = asyncio.create_task(the_replay_arrives())
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            answer = await client.get(
                f"/api/orders/{order_id}/stream", headers={"Authorization": f"Bearer {token}"}
            )
        late.cancel()
        await app.state.http.close()
    kinds = [line[len("event: ") :] for line in answer.text.splitlines() if "event:" in line]
    assert kinds == ["snapshot", "OrderCreated", "StockReserved", "OrderCompleted"]
