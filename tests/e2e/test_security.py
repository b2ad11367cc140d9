"""A1-A5 through the gateway: two identities, forged tokens, bad bodies."""

from __future__ import annotations

import time

import jwt
import pytest

from services.gateway.auth import key_id
from services.gateway.settings import SANDBOX_JWT_SECRET
from tests.e2e.conftest import ADDRESS, new_product, new_shopper

pytestmark = pytest.mark.e2e


def error_of(answer):
    body = answer.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


def test_another_customer_sees_nothing_of_mine(gateway, admin, shopper):
    sku = new_product(admin, stock=3)
    cart_id = shopper.cart_with(sku, 1)
    order_id = shopper.checkout(shopper.cart_with(sku, 1))
    shopper.wait_terminal(order_id)
    intruder = new_shopper(gateway)

    for path in (f"/api/carts/{cart_id}", f"/api/orders/{order_id}"):
        answer = intruder.get(path)
        assert answer.status_code in (403, 404), path
        assert error_of(answer)["code"] in ("not_found", "forbidden")
    for path in ("/api/payments", "/api/shipments"):
        answer = intruder.get(path, params={"order_id": order_id})
        assert answer.status_code in (403, 404), (path, answer.text)
        assert intruder.get(path).json()["items"] == []
    assert intruder.get(f"/api/orders/{order_id}/stream").status_code == 404
    assert intruder.get("/api/orders").json()["items"] == []

    # Nor change it: add to, check out or empty someone else's cart.
    assert (
        intruder.post(f"/api/carts/{cart_id}/items", {"sku": sku, "quantity": 1}).status_code == 404
    )
    checkout = {"payment": {"card_token": "tok_visa"}, "shipping_address": ADDRESS}
    assert intruder.post(f"/api/carts/{cart_id}/checkout", checkout).status_code == 404
    deleted = gateway.delete(f"/api/carts/{cart_id}/items/{sku}", headers=intruder.headers)
    assert deleted.status_code == 404
    cart = shopper.get(f"/api/carts/{cart_id}").json()
    assert [i["quantity"] for i in cart["items"]] == [1]
    assert cart["status"] == "OPEN"


def forge(claims, secret=SANDBOX_JWT_SECRET + "-wrong", algorithm="HS256", kid=None):
    """A token as the gateway makes them (kid, audience), but for ``claims``:
    each bad one fails for its own reason, not for a missing field."""
    now = int(time.time())
    base = {
        "sub": "00000000-0000-0000-0000-000000000001",
        "role": "admin",
        "iss": "shop",
        "aud": "shop-api",
        "iat": now,
        "exp": now + 600,
    }
    kid = kid or key_id(SANDBOX_JWT_SECRET)  # the key the gateway signs with
    return jwt.encode({**base, **claims}, secret, algorithm=algorithm, headers={"kid": kid})


def test_a_token_forged_with_the_gateways_own_key_passes(gateway):
    """The forgery works: the failures below are each its one change."""
    answer = gateway.get(
        "/api/orders", headers={"Authorization": f"Bearer {forge({}, SANDBOX_JWT_SECRET)}"}
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Basic YWRtaW46YWRtaW4=",
        f"Bearer {forge({})}",  # tampered: wrong signature
        f"Bearer {forge({'exp': int(time.time()) - 10}, secret=SANDBOX_JWT_SECRET)}",  # expired
        f"Bearer {forge({'iss': 'evil'}, secret=SANDBOX_JWT_SECRET)}",  # wrong issuer
        f"Bearer {forge({'aud': 'another-api'}, secret=SANDBOX_JWT_SECRET)}",  # wrong audience
        f"Bearer {forge({}, secret=SANDBOX_JWT_SECRET, kid='not-a-key-of-ours')}",  # unknown kid
        "Bearer "
        + jwt.encode({"sub": "x", "role": "admin", "iss": "shop"}, None, algorithm="none"),
    ],
    # names that do not change with the clock: xdist's workers must collect the same ids
    ids=[
        "none",
        "not-a-jwt",
        "basic",
        "tampered",
        "expired",
        "wrong-issuer",
        "wrong-audience",
        "unknown-kid",
        "alg-none",
    ],
)
def test_without_a_valid_token_is_401(gateway, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = gateway.post("/api/carts", headers=headers)
    assert answer.status_code == 401, answer.text
    assert error_of(answer)["code"] == "unauthorized"
    assert gateway.get("/api/orders", headers=headers).status_code == 401


def test_identity_headers_from_outside_are_ignored(gateway, shopper):
    spoofed = {"X-Shop-Customer-Id": shopper.customer_id, "X-Shop-Role": "admin"}
    assert gateway.get("/api/orders", headers=spoofed).status_code == 401


def test_customer_token_on_admin_routes_is_403(shopper, admin):
    sku = new_product(admin, stock=1)
    product = {"sku": "NOPE-1", "name": "n", "price_cents": 1, "currency": "EUR"}
    assert shopper.post("/api/products", product).status_code == 403
    answer = shopper.post(f"/api/inventory/{sku}/restock", {"quantity": 5})
    assert answer.status_code == 403
    assert error_of(answer)["code"] == "forbidden"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("items", {"sku": "x"}),
        ("items", {"sku": "A", "quantity": -1}),
        ("items", {"sku": "A", "quantity": 1, "unit_price_cents": 0}),  # server-owned field
        ("checkout", {"payment": {}}),
        ("checkout", {"payment": {"card_token": "tok_visa"}, "shipping_address": {"name": "x"}}),
    ],
)
def test_bad_bodies_are_422_with_the_error_shape(shopper, path, body):
    cart_id = shopper.post("/api/carts").json()["id"]
    answer = shopper.post(f"/api/carts/{cart_id}/{path}", body)
    assert answer.status_code == 422, answer.text
    assert error_of(answer)["code"] == "invalid_request"
    assert "Traceback" not in answer.text


def test_not_json_is_422(shopper):
    cart_id = shopper.post("/api/carts").json()["id"]
    answer = shopper.client.post(
        f"/api/carts/{cart_id}/items",
        content=b"{not json",
        headers={**shopper.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    error_of(answer)


def test_checkout_of_an_empty_or_checked_out_cart_is_409(shopper, admin):
    checkout = {"payment": {"card_token": "tok_visa"}, "shipping_address": ADDRESS}
    empty = shopper.post("/api/carts").json()["id"]
    answer = shopper.post(f"/api/carts/{empty}/checkout", checkout)
    assert answer.status_code == 409 and error_of(answer)["code"] == "conflict"
    assert "empty" in error_of(answer)["message"]

    sku = new_product(admin, stock=2)
    # The refused checkout left the cart open: it takes an item and checks out.
    assert shopper.get(f"/api/carts/{empty}").json()["status"] == "OPEN"
    assert shopper.post(f"/api/carts/{empty}/items", {"sku": sku, "quantity": 1}).status_code < 300
    shopper.checkout(empty)
    cart_id = shopper.cart_with(sku, 1)
    shopper.checkout(cart_id)
    assert shopper.post(f"/api/carts/{cart_id}/checkout", checkout).status_code == 409
    assert (
        shopper.post(f"/api/carts/{cart_id}/items", {"sku": sku, "quantity": 1}).status_code == 409
    )


def test_unknown_ids_are_404(shopper):
    assert shopper.get("/api/orders/00000000-0000-0000-0000-000000000000").status_code == 404
    assert shopper.get("/api/products/NO-SUCH-SKU").status_code == 404
    assert shopper.get("/api/nothing-here").status_code == 404
    cart_id = shopper.post("/api/carts").json()["id"]
    assert (
        shopper.post(f"/api/carts/{cart_id}/items", {"sku": "NO-SUCH", "quantity": 1}).status_code
        == 404
    )


def test_caps_on_page_size_body_and_password_guessing(gateway, shopper):
    assert gateway.get("/api/products", params={"limit": 100000}).status_code == 422
    huge = b'{"sku": "' + b"A" * 200_000 + b'", "quantity": 1}'
    cart_id = shopper.post("/api/carts").json()["id"]
    answer = shopper.client.post(
        f"/api/carts/{cart_id}/items",
        content=huge,
        headers={**shopper.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    victim = {"email": f"victim-{time.time_ns()}@example.com", "password": "the real one"}
    assert gateway.post("/api/auth/register", json=victim).status_code == 201
    guess = {**victim, "password": "wrong"}
    answers = [gateway.post("/api/auth/token", json=guess) for _ in range(6)]
    assert [a.status_code for a in answers] == [401] * 5 + [429]  # five a minute, an account
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 61
    # Locked for the window, even with the right password.
    assert gateway.post("/api/auth/token", json=victim).status_code == 429


def test_register_twice_is_409_and_short_password_422(gateway):
    body = {"email": f"dup-{time.time_ns()}@example.com", "password": "long enough"}
    assert gateway.post("/api/auth/register", json=body).status_code == 201
    assert gateway.post("/api/auth/register", json=body).status_code == 409
    short = {"email": f"s-{time.time_ns()}@example.com", "password": "short"}
    assert gateway.post("/api/auth/register", json=short).status_code == 422
