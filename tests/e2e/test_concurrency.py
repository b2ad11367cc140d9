"""S3: many concurrent orders for little stock, with two inventory processes
competing on one queue."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import new_product, new_shopper, stock_of, wait_for_stock

pytestmark = pytest.mark.e2e


def test_thirty_checkouts_for_ten_in_stock_complete_exactly_ten(gateway, admin, stack):
    assert "inventory-2" in stack.running  # two competing inventory consumers
    sku = new_product(admin, stock=10)
    shoppers = [new_shopper(gateway) for _ in range(30)]
    carts = [s.cart_with(sku, 1) for s in shoppers]

    low_water = {"available": 10, "reserved": 0}
    done = threading.Event()

    def watch_stock() -> None:
        while not done.is_set():
            level = stock_of(gateway, sku)
            for key in low_water:
                low_water[key] = min(low_water[key], level[key])

    watcher = threading.Thread(target=watch_stock)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            orders = list(
                pool.map(lambda sc: sc[0].checkout(sc[1]), zip(shoppers, carts, strict=False))
            )
            finals = list(
                pool.map(
                    lambda so: so[0].wait_terminal(so[1], timeout=60),
                    zip(shoppers, orders, strict=False),
                )
            )
    finally:
        done.set()
        watcher.join()

    outcomes = Counter((o["status"], o["cancel_reason"]) for o in finals)
    assert outcomes == {("COMPLETED", None): 10, ("CANCELLED", "out_of_stock"): 20}
    wait_for_stock(gateway, sku, {"sku": sku, "available": 0, "reserved": 0})
    assert low_water["available"] >= 0 and low_water["reserved"] >= 0
