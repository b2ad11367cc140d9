"""`shopctl seed` loads the demo catalog through the gateway, once."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from shopctl.demo import DEMO_PRODUCTS
from tests.e2e.conftest import ADMIN, stock_of

pytestmark = pytest.mark.e2e


def seed(stack, password=ADMIN[1]):
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from shopctl.cli import main; main()",
            "seed",
            "--gateway",
            stack.gateway,
            "--admin-email",
            ADMIN[0],
            "--admin-password",
            password,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_seed_loads_a_dozen_products_with_stock_and_is_harmless_twice(stack, gateway):
    first = seed(stack)
    assert first.returncode == 0, first.stderr
    assert "12 created" in first.stdout or "already there" in first.stdout
    again = seed(stack)
    assert again.returncode == 0 and "0 created, 12 already there" in again.stdout

    listed = gateway.get("/api/products", params={"q": "", "limit": 100}).json()
    skus = {p["sku"] for p in listed["items"]}
    assert {p[0] for p in DEMO_PRODUCTS} <= skus
    sku, *_, stock = DEMO_PRODUCTS[0]
    deadline = time.monotonic() + 15
    while gateway.get(f"/api/inventory/{sku}").status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stock_of(gateway, sku)["available"] <= stock
    search = gateway.get("/api/products", params={"q": "saga mug"}).json()
    assert [p["sku"] for p in search["items"]] == ["MUG-001"] and search["total"] == 1


def test_seed_with_a_wrong_password_is_one_clear_error(stack):
    result = seed(stack, password="wrong")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the gateway refused the admin login")
    assert "Traceback" not in result.stderr


def test_seed_without_a_gateway_says_so():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shopctl.cli import main; main()",
            "seed",
            "--gateway",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot be reached" in result.stderr
