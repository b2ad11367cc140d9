"""The catalog service's prices, asked over HTTP: the cart's one upstream.
Its failures become the cart's own answers (404 for an unknown product, 503
when the catalog cannot say)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from services.common.errors import ApiError, not_found
from services.common.upstream import UpstreamError, Upstreams


@dataclass(frozen=True)
class Catalog:
    """The catalog service's prices, asked over the shared pooled client."""

    base_url: str
    http: Upstreams


async def price_of(catalog: Catalog, sku: str) -> tuple[int, str]:
    """The product's current price from the catalog service."""
    try:
        answer = await catalog.http.request(
            "GET", f"{catalog.base_url.rstrip('/')}/products/{quote(sku, safe='')}"
        )
    except UpstreamError as exc:
        raise ApiError(503, f"the catalog cannot be reached ({type(exc).__name__})") from None
    if answer.status == 404:
        raise not_found(f"product {sku}")
    if answer.status != 200:
        raise ApiError(503, f"the catalog answered {answer.status}")
    product = answer.json()
    return int(product["price_cents"]), str(product["currency"])
