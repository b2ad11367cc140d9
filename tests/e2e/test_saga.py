"""The saga end to end through the gateway against the real servers."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import new_product, stock_of, wait_for_stock

pytestmark = pytest.mark.e2e


def test_happy_path_completes_with_one_shipment_and_stock_reduced(shopper, admin, gateway):
    sku = new_product(admin, stock=5)
    order_id = shopper.checkout(shopper.cart_with(sku, 2))
    order = shopper.wait_terminal(order_id, timeout=20)
    assert order["status"] == "COMPLETED", order
    assert order["cancel_reason"] is None
    assert order["total_cents"] == 2 * 1250
    assert order["items"] == [{"sku": sku, "quantity": 2, "unit_price_cents": 1250}]

    shipments = shopper.get("/api/shipments", params={"order_id": order_id}).json()["items"]
    assert len(shipments) == 1 and shipments[0]["status"] == "CREATED"
    assert shipments[0]["tracking_number"].startswith("SHP")
    payments = shopper.get("/api/payments", params={"order_id": order_id}).json()["items"]
    assert [(p["status"], p["amount_cents"]) for p in payments] == [("CAPTURED", 2500)]
    # Inventory moves the reservation to shipped on ShippingCreated, in parallel.
    wait_for_stock(gateway, sku, {"sku": sku, "available": 3, "reserved": 0})
    assert shopper.get("/api/orders").json()["items"][0]["id"] == order_id


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("tok_processingError", "processing_error"),
    ],
)
def test_declined_payment_cancels_and_gives_the_stock_back(shopper, admin, gateway, card, reason):
    sku = new_product(admin, stock=4)
    order_id = shopper.checkout(shopper.cart_with(sku, 3), card=card)
    order = shopper.wait_terminal(order_id, timeout=20)
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "payment_declined")
    payments = shopper.get("/api/payments", params={"order_id": order_id}).json()["items"]
    assert [(p["status"], p["reason"]) for p in payments] == [("DECLINED", reason)]
    assert shopper.get("/api/shipments", params={"order_id": order_id}).json()["items"] == []
    # The release is its own event after the cancel: wait for it, with a deadline.
    wait_for_stock(gateway, sku, {"sku": sku, "available": 4, "reserved": 0})


def test_out_of_stock_cancels_without_touching_stock(shopper, admin, gateway):
    sku = new_product(admin, stock=2)
    order_id = shopper.checkout(shopper.cart_with(sku, 3))
    order = shopper.wait_terminal(order_id, timeout=20)
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "out_of_stock")
    assert stock_of(gateway, sku) == {"sku": sku, "available": 2, "reserved": 0}
    assert shopper.get("/api/payments", params={"order_id": order_id}).json()["items"] == []
