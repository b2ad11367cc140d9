"""The whole stack as local processes against the real servers, once per
test run: its own databases and virtual host, free ports, two inventory
processes competing on one queue."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopctl.errors import ShopError
from shopctl.runtimes.local import LocalStack, LocalStackConfig
from shopctl.stack import PARTS
from tests.conftest import PG_ADMIN_URL, RUN_ID, amqp_url, free_port, own_vhost

ADMIN = ("admin@shop.local", "sandbox-admin-password")
ORDER_STEP_TIMEOUT_S = 6.0
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


class Stack(LocalStack):
    """The test run's stack; ``gateway`` and ``urls`` for the tests."""

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.config.ports}

    def start_part(self, name: str) -> None:
        self.restart(name)


@pytest.fixture(scope="session")
def stack_vhost() -> Iterator[str]:
    """The stack's own virtual host: its bindings must not route the
    integration tests' messages."""
    with own_vhost(f"shoptest_{RUN_ID}_stack") as name:
        yield name


@pytest.fixture(scope="session")
def broker_url(stack_vhost: str) -> str:
    return amqp_url(stack_vhost)


@pytest.fixture(scope="session")
def stack(broker_url: str) -> Iterator[Stack]:
    ports = {p.name: free_port() for p in PARTS}
    ports["inventory-2"] = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="shop-e2e-"))
    stack = Stack(
        LocalStackConfig(
            pg_admin_url=PG_ADMIN_URL,
            broker_url=broker_url,
            ports=ports,
            log_dir=log_dir,
            database_prefix=f"shoptest_{RUN_ID}",
            replicas={"inventory": 2},  # two competing consumers on one queue
            # 8 x 5 connections at most: two sandboxes (7 x 4 each,
            # SHOP_DB_CEILING below) fit beside it in PostgreSQL's 100
            db_ceiling=5,
            extra_env={
                "SHOP_ADMIN_EMAIL": ADMIN[0],
                "SHOP_ADMIN_PASSWORD": ADMIN[1],
                "SHOP_ORDER_STEP_TIMEOUT_S": str(ORDER_STEP_TIMEOUT_S),
                "SHOP_ORDER_SHIPPING_TIMEOUT_S": str(ORDER_STEP_TIMEOUT_S),
                "SHOP_RETRY_BASE_DELAY_MS": "100",
                "SHOP_FAULT_INJECTION": "true",
            },
        )
    )
    try:
        stack.create_databases()
        stack.start()
        try:
            stack.wait_ready(90)
        except ShopError as exc:
            print(f"\n{exc.message}\n{exc.hint}")  # the part's last log lines, for CI
            raise
        yield stack
    finally:
        stack.stop()
        stack.drop_databases()
        if os.environ.get("SHOP_KEEP_LOGS"):
            print(f"stack logs kept in {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


class Shopper:
    """A customer of the shop, talking only to the gateway."""

    def __init__(self, client: httpx.Client, token: str, customer_id: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.customer_id = customer_id

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.post(path, json=json, headers=self.headers, **kw)

    def cart_with(self, sku: str, quantity: int) -> str:
        cart = self.post("/api/carts")
        assert cart.status_code == 201, cart.text
        cart_id = cart.json()["id"]
        added = self.post(f"/api/carts/{cart_id}/items", {"sku": sku, "quantity": quantity})
        assert added.status_code == 200, added.text
        return str(cart_id)

    def checkout(self, cart_id: str, card: str = "tok_visa") -> str:
        answer = self.post(
            f"/api/carts/{cart_id}/checkout",
            {"payment": {"card_token": card}, "shipping_address": ADDRESS},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["order_id"])

    def wait_terminal(self, order_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.get(f"/api/orders/{order_id}")
            if answer.status_code == 200 and answer.json()["status"] in ("COMPLETED", "CANCELLED"):
                return dict(answer.json())
            time.sleep(0.1)
        raise AssertionError(f"order {order_id} not terminal after {timeout}s: {answer.text}")


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway, timeout=30) as client:
        yield client


def login(client: httpx.Client, email: str, password: str) -> str:
    answer = client.post("/api/auth/token", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def new_shopper(client: httpx.Client) -> Shopper:
    email = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
    registered = client.post(
        "/api/auth/register", json={"email": email, "password": "correct horse"}
    )
    assert registered.status_code == 201, registered.text
    return Shopper(client, login(client, email, "correct horse"), registered.json()["customer_id"])


@pytest.fixture
def shopper(gateway: httpx.Client) -> Shopper:
    return new_shopper(gateway)


@pytest.fixture
def admin(gateway: httpx.Client) -> Shopper:
    return Shopper(gateway, login(gateway, *ADMIN), "admin")


def new_product(admin: Shopper, stock: int, price_cents: int = 1250) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    created = admin.post(
        "/api/products",
        {
            "sku": sku,
            "name": f"Test product {sku}",
            "description": "made by a test",
            "price_cents": price_cents,
            "currency": "EUR",
            "initial_stock": stock,
        },
    )
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # inventory creates the stock from the event
        if admin.get(f"/api/inventory/{sku}").status_code == 200:
            return sku
        time.sleep(0.05)
    raise AssertionError(f"stock for {sku} never appeared")


def stock_of(client: httpx.Client, sku: str) -> dict[str, int]:
    answer = client.get(f"/api/inventory/{sku}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def wait_for_stock(
    client: httpx.Client, sku: str, expected: dict[str, Any], timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    current: dict[str, int] = {}
    while time.monotonic() < deadline:
        current = stock_of(client, sku)
        if current == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"stock of {sku} is {current}, expected {expected}")


@contextlib.contextmanager
def sandbox(state_dir: Path, name: str) -> Iterator[dict[str, str]]:
    """A sandbox of its own: state folder, ports, databases, virtual host;
    whatever runs in it is stopped and dropped at the end."""
    with own_vhost(f"shoptest_{RUN_ID}_{name}") as vhost:
        env = {
            "SHOP_STATE_DIR": str(state_dir),
            "SHOP_BROKER_URL": amqp_url(vhost),
            "SHOP_DATABASE_PREFIX": f"shoptest_{RUN_ID}_{name}",
            "SHOP_ADMIN_PASSWORD": "local-runtime-test",
            "SHOP_DB_CEILING": "4",  # beside the session's stack (tests/conftest.py)
            # up's own deadline below pytest's, so a failure shows the part's log
            "SHOP_READY_TIMEOUT_S": "90",
            **{f"SHOP_{p.name.upper()}_PORT": str(free_port()) for p in PARTS},
            "SHOP_PROMETHEUS_PORT": str(free_port()),
            # a test about Prometheus (or a newcomer's sandbox) takes it out
            "SHOP_PROMETHEUS": "false",
        }
        try:
            yield env
        finally:
            from tests.e2e.test_local_runtime import shopctl

            shopctl(env, "down", "--volumes")


@pytest.fixture
def sandbox_env(tmp_path: Path):
    """A sandbox of its own for one test."""
    with sandbox(tmp_path / "state", "lr") as env:
        yield env
