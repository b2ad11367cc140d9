"""S5: a step that never answers times the order out; a late success is
refunded, not shipped, and the stock comes back."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import ORDER_STEP_TIMEOUT_S, new_product, wait_for_stock

pytestmark = pytest.mark.e2e


def test_order_times_out_when_payment_never_answers_and_late_success_is_refunded(
    stack, shopper, admin, gateway
):
    sku = new_product(admin, stock=3)
    cart_id = shopper.cart_with(sku, 2)
    stack.stop("payment")
    try:
        order_id = shopper.checkout(cart_id)
        order = shopper.wait_terminal(order_id, timeout=ORDER_STEP_TIMEOUT_S + 20)
        assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "timeout")
        wait_for_stock(gateway, sku, {"sku": sku, "available": 3, "reserved": 0})
    finally:
        stack.start_part("payment")  # now it sees StockReserved, and the cancel

    # Payment now handles StockReserved and OrderCancelled, in either order:
    # cancel first -> never charged; charge first -> refunded on the cancel.
    wait_until_handled(stack.urls["payment"], ["payment.stock.reserved", "payment.order.cancelled"])
    payments = shopper.get("/api/payments", params={"order_id": order_id}).json()["items"]
    assert [p["status"] for p in payments] in ([], ["REFUNDED"]), payments
    shipments = shopper.get("/api/shipments", params={"order_id": order_id}).json()["items"]
    assert all(s["status"] != "CREATED" for s in shipments), shipments
    assert shopper.get(f"/api/orders/{order_id}").json()["status"] == "CANCELLED"
    wait_for_stock(gateway, sku, {"sku": sku, "available": 3, "reserved": 0})


def wait_until_handled(service_url: str, queues: list[str], timeout: float = 30.0) -> None:
    """Poll a service's /metrics until each queue has handled a message."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{service_url}/metrics", timeout=5).text
        if all(f'queue="{q}"' in text and _handled(text, q) for q in queues):
            return
        time.sleep(0.1)
    raise AssertionError(f"{queues} not handled within {timeout}s")


def _handled(metrics: str, queue: str) -> bool:
    prefix = f'shop_events_consumed_total{{outcome="handled",queue="{queue}"}} '
    return any(
        line.startswith(prefix) and float(line[len(prefix) :]) >= 1 for line in metrics.splitlines()
    )


def test_a_paid_order_whose_shipment_never_comes_is_cancelled_refunded_and_restocked(
    stack, shopper, admin, gateway
):
    sku = new_product(admin, stock=4)
    cart_id = shopper.cart_with(sku, 3)
    stack.stop("shipping")
    try:
        order_id = shopper.checkout(cart_id)
        deadline = time.monotonic() + 20
        while shopper.get(f"/api/orders/{order_id}").json().get("status") != "PAID":
            assert time.monotonic() < deadline, "the order never got PAID"
            time.sleep(0.1)
        order = shopper.wait_terminal(order_id, timeout=ORDER_STEP_TIMEOUT_S + 20)
        assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "timeout")
        wait_for_stock(gateway, sku, {"sku": sku, "available": 4, "reserved": 0})
        deadline = time.monotonic() + 15
        while True:
            payments = shopper.get("/api/payments", params={"order_id": order_id}).json()
            if [p["status"] for p in payments["items"]] == ["REFUNDED"]:
                break
            assert time.monotonic() < deadline, payments
            time.sleep(0.1)
    finally:
        stack.start_part("shipping")  # sees PaymentSucceeded, then the cancel
    shipments = shopper.get("/api/shipments", params={"order_id": order_id}).json()["items"]
    assert all(s["status"] != "CREATED" for s in shipments), shipments
