"""Nothing internal is reachable through the gateway by dot segments or
encoded slashes, with or without a token: sent raw, as `curl --path-as-is`
does (httpx would resolve the dots before sending)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

INTERNAL = ("metrics", "readyz", "healthz", "docs", "openapi.json")
TEMPLATES = (
    "/api/products/../../{target}",
    "/api/products/./../../{target}",
    "/api/inventory/%2e%2e/%2e%2e/{target}",
    "/api/inventory/%2E%2E/%2E%2E/{target}",
    "/api/products/..%2f..%2f{target}",
    "/api/products/..%2F..%2F{target}",
    "/api/products/.%2e/.%2e/{target}",
    "/api/products/%252e%252e/%252e%252e/{target}",  # encoded twice
    "/api/products/..%5c..%5c{target}",
    "/api/products/..\\..\\{target}",
    "/api/carts/x/../../../{target}",
    "/api/orders/%2e%2e/%2e%2e/{target}",
    "/api/payments/..;/..;/{target}",
    "/api/shipments/%2e%2e%2f%2e%2e%2f{target}",
    "/api/products/x/..",
    "/api/products/%00",
)


def raw_get(base: str, path: str, token: str | None = None) -> tuple[int, str]:
    where = urlsplit(base)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "customer"])
def test_dot_segments_and_encoded_slashes_reach_nothing_internal(
    stack, shopper, template, with_token
):
    token = shopper.headers["Authorization"].split()[1] if with_token else None
    for target in INTERNAL if "{target}" in template else ("",):
        path = template.format(target=target)
        status, body = raw_get(stack.gateway, path, token)
        assert status == 404 or (status == 401 and not with_token), (path, status, body)
        assert "# HELP" not in body and '"checks"' not in body and "openapi" not in body
        assert "swagger" not in body.lower()
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message"}, body


def test_plain_paths_still_route(stack, shopper, admin):
    from tests.e2e.conftest import new_product

    sku = new_product(admin, stock=1)
    status, body = raw_get(stack.gateway, f"/api/products/{sku}")
    assert status == 200 and json.loads(body)["sku"] == sku
    status, body = raw_get(stack.gateway, "/api/products/no%20such%20sku")
    assert status == 404
