"""Cart asks the catalog for a product's price over real HTTP (a small
server stands in for the catalog): its answers and its failures become the
cart's own answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from services.cart.prices import Catalog, price_of
from services.common.errors import ApiError
from services.common.upstream import Upstreams
from tests.conftest import free_port


@pytest.fixture
async def catalog() -> AsyncIterator[tuple[Catalog, list[str]]]:
    asked: list[str] = []

    async def product(request: web.Request) -> web.Response:
        asked.append(request.raw_path)
        sku = request.match_info["sku"]
        if sku == "GONE":
            return web.json_response({"detail": "no such product"}, status=404)
        if sku == "BROKEN":
            return web.Response(status=500)
        return web.json_response({"sku": sku, "price_cents": 617, "currency": "EUR"})

    app = web.Application()
    app.router.add_get("/products/{sku}", product)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = Catalog(f"http://127.0.0.1:{port}/", Upstreams(timeout_s=5.0))
    try:
        yield client, asked
    finally:
        await client.http.close()
        await runner.cleanup()


async def test_a_price_comes_from_the_catalog(catalog: tuple[Catalog, list[str]]) -> None:
    client, asked = catalog
    assert await price_of(client, "SKU-1") == (617, "EUR")
    assert await price_of(client, "SKU-1") == (617, "EUR")  # on the kept connection
    # a SKU is one path segment, whatever it holds
    assert await price_of(client, "a b/c") == (617, "EUR")
    assert asked == ["/products/SKU-1", "/products/SKU-1", "/products/a%20b%2Fc"]


async def test_the_catalogs_answers_become_the_carts(catalog: tuple[Catalog, list[str]]) -> None:
    client, _ = catalog
    with pytest.raises(ApiError) as gone:
        await price_of(client, "GONE")
    assert gone.value.status == 404 and "GONE" in str(gone.value)
    with pytest.raises(ApiError) as broken:
        await price_of(client, "BROKEN")
    assert broken.value.status == 503 and str(broken.value) == "the catalog answered 500"


async def test_a_catalog_that_cannot_be_reached_is_a_503() -> None:
    nowhere = Catalog(f"http://127.0.0.1:{free_port()}", Upstreams(timeout_s=2.0))
    try:
        with pytest.raises(ApiError) as down:
            await price_of(nowhere, "SKU-1")
    finally:
        await nowhere.http.close()
    assert down.value.status == 503
    assert str(down.value) == "the catalog cannot be reached (UpstreamUnavailable)"
