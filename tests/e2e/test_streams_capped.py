"""A customer's order streams are capped (4 at once here): the fifth is
answered 429 while four are open, and one closed makes room again."""

from __future__ import annotations

import contextlib

import pytest

from services.common.faults import FaultSpec
from shopctl.fault_switch import switch_off, switch_on
from tests.e2e.conftest import new_product

pytestmark = pytest.mark.e2e


def test_the_fifth_open_stream_of_one_customer_is_429(gateway, shopper, admin, broker_url):
    sku = new_product(admin, stock=2)
    # payment holds this order's step 8 s: its stream stays open meanwhile
    fault = FaultSpec(part="payment", event="StockReserved", kind="delay", ms=8000, sku=sku)
    switch_on(broker_url, fault)
    try:
        order_id = shopper.checkout(shopper.cart_with(sku, 1))
        path = f"/api/orders/{order_id}/stream"
        with contextlib.ExitStack() as open_streams:
            for _ in range(4):
                stream = open_streams.enter_context(
                    gateway.stream("GET", path, headers=shopper.headers)
                )
                assert stream.status_code == 200
            fifth = gateway.get(path, headers=shopper.headers)
            assert fifth.status_code == 429, fifth.text
            assert "4 order streams open" in fifth.json()["error"]["message"]
            assert int(fifth.headers["Retry-After"]) > 0
            metrics = gateway.get("/metrics").text  # sandbox mode: on the public port
            assert "shop_gateway_open_streams 4.0" in metrics
        # closed: room again
        with gateway.stream("GET", path, headers=shopper.headers) as again:
            assert again.status_code == 200
    finally:
        switch_off(broker_url, "payment", fault.id)
