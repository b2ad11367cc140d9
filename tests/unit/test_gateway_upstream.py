"""The gateway's upstream client against real HTTP servers: what a service
answers passes through as it came; a service that is down, slow or
overloaded becomes the 503 or 504 the API promises."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.common.identity import Caller
from services.common.upstream import Upstreams, UpstreamTimeout, UpstreamUnavailable
from services.gateway.app import create_app
from services.gateway.auth import issue_token
from services.gateway.settings import GatewaySettings
from tests.conftest import free_port
from tests.http_server import ServedApp


class Service(ServedApp):
    """A real HTTP server on a free port, in a thread: /carts/* echoes."""

    def __init__(self) -> None:
        app = FastAPI()
        self.seen: list[str] = []

        @app.api_route("/carts/{rest:path}", methods=["GET", "POST"])
        async def carts(rest: str, request: Request) -> Response:
            self.seen.append(f"{request.method} {request.url.path}?{request.url.query}")
            if rest == "slow":
                await asyncio.sleep(3)
            body = await request.body()
            return JSONResponse(
                {
                    "path": request.url.path,
                    "body": body.decode(),
                    "customer": request.headers.get("x-shop-customer-id"),
                },
                status_code=201,
                headers={"Location": "/somewhere", "X-Private": "not forwarded"},
            )

        super().__init__(app)


async def test_answers_pass_through_and_failures_are_named():
    with Service() as service:
        client = Upstreams(timeout_s=1.0)
        try:
            base = f"http://127.0.0.1:{service.port}"
            answer = await client.request(
                "POST", f"{base}/carts/a%2Fb", query="x=1&y=%20z", body=b"hello"
            )
            assert answer.status == 201
            assert answer.headers["location"] == "/somewhere"
            assert answer.json()["body"] == "hello"
            # sent as given: the quoted slash and the query as the client wrote them
            assert service.seen[-1] == "POST /carts/a/b?x=1&y=%20z"
            with pytest.raises(UpstreamTimeout):
                await client.request("GET", f"{base}/carts/slow")
        finally:
            await client.close()
    client = Upstreams(timeout_s=1.0)
    try:
        with pytest.raises(UpstreamUnavailable):
            await client.request("GET", f"http://127.0.0.1:{free_port()}/carts/x")
    finally:
        await client.close()


async def test_through_the_gateway_a_down_service_is_a_503_and_a_slow_one_a_504():
    with Service() as service:
        settings = GatewaySettings(
            cart_url=f"http://127.0.0.1:{service.port}",
            order_url=f"http://127.0.0.1:{free_port()}",  # nothing listens
            upstream_timeout_s=1.0,
            fault_injection=True,  # sandbox mode: its secret (the start refuses it outside)
        )
        app = create_app(settings)
        customer = uuid.uuid4()
        headers = {"Authorization": f"Bearer {issue_token(settings, Caller(customer, 'customer'))}"}
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as gw:
                made = await gw.post("/api/carts/c1/items", content=b"{}", headers=headers)
                assert made.status_code == 201
                assert made.headers["location"] == "/somewhere"
                assert "x-private" not in made.headers
                assert made.json()["customer"] == str(customer)  # the token's identity

                slow = await gw.get("/api/carts/slow", headers=headers)
                assert slow.status_code == 504
                assert "carts service did not answer in time" in slow.text

                down = await gw.get(f"/api/orders/{uuid.uuid4()}", headers=headers)
                assert down.status_code == 503
                assert "orders service is unavailable" in down.text
        finally:
            await app.state.http.close()
