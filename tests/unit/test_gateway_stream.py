"""The order stream waits a moment for an order placed an instant ago
(it is created asynchronously after checkout's 202)."""

from __future__ import annotations

import time
import uuid

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

    def __init__(self, found_after: int) -> None:
        self.calls = 0
        self.found_after = found_after
        app = FastAPI()

        @app.get("/orders/{order_id}")
        async def order(order_id: str) -> JSONResponse:
            self.calls += 1
            if self.calls <= self.found_after:
                return JSONResponse({"error": {"code": "not_found", "message": "no"}}, 404)
            return JSONResponse({"id": order_id, "status": "COMPLETED"})

        super().__init__(app)


@pytest.mark.parametrize(("found_after", "expected"), [(3, 200), (10_000, 404)])
async def test_stream_waits_briefly_for_a_just_placed_order(found_after, expected):
    with SlowOrderService(found_after) as orders:
        settings = GatewaySettings(
            order_url=f"http://127.0.0.1:{orders.port}", stream_order_wait_s=0.5
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
