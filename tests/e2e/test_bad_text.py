"""A NUL character anywhere in text from outside is refused with 422 (one
rule, in the shared models and at every app's edge); nothing is half-written
and no order is accepted that a later step could never store."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ADDRESS, new_product

pytestmark = pytest.mark.e2e

NUL = "\x00"


def assert_refused(answer) -> None:
    assert answer.status_code == 422, answer.text
    assert "NUL" in answer.json()["error"]["message"]


def test_nul_in_a_product_is_refused(admin):
    product = {
        "sku": "NUL-1",
        "name": f"bad{NUL}name",
        "description": "",
        "price_cents": 100,
        "currency": "EUR",
        "initial_stock": 1,
    }
    assert_refused(admin.post("/api/products", product))
    assert admin.get("/api/products/NUL-1").status_code == 404


def test_nul_in_registration_and_login_is_refused(gateway):
    assert_refused(
        gateway.post("/api/auth/register", json={"email": f"a{NUL}@b.example", "password": "x" * 9})
    )
    assert_refused(
        gateway.post(
            "/api/auth/register", json={"email": "nul@b.example", "password": f"{NUL}" * 9}
        )
    )
    assert_refused(gateway.post("/api/auth/token", json={"email": "a@b.example", "password": NUL}))


@pytest.mark.parametrize("query", ["q=%00", "q=a%00b", "limit=1&q=x%00"])
def test_nul_in_a_search_is_refused(gateway, query):
    assert_refused(gateway.get(f"/api/products?{query}"))


def test_nul_in_a_shipping_address_is_refused_and_the_cart_stays_open(shopper, admin, gateway):
    sku = new_product(admin, stock=2)
    cart_id = shopper.cart_with(sku, 1)
    for field in ADDRESS:
        address = {**ADDRESS, field: f"{ADDRESS[field]}{NUL}"}
        answer = shopper.post(
            f"/api/carts/{cart_id}/checkout",
            {"payment": {"card_token": "tok_visa"}, "shipping_address": address},
        )
        assert_refused(answer)
    assert_refused(
        shopper.post(
            f"/api/carts/{cart_id}/checkout",
            {"payment": {"card_token": f"tok_visa{NUL}"}, "shipping_address": ADDRESS},
        )
    )
    assert shopper.get(f"/api/carts/{cart_id}").json()["status"] == "OPEN"
    assert shopper.get("/api/orders").json()["items"] == []
    # the same cart checks out once the address is clean
    order_id = shopper.checkout(cart_id)
    assert shopper.wait_terminal(order_id)["status"] == "COMPLETED"
