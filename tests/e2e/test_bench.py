"""`shopctl bench` from a shell against a sandbox: it runs the load, follows
the orders, measures the bare pipeline and prints the ratio."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
def test_a_short_paced_bench_with_its_baseline(sandbox_env, tmp_path):
    env = {**sandbox_env, "SHOP_RUNTIME": "local"}
    assert shopctl(env, "up", "--runtime", "local").returncode == 0
    ran = shopctl(
        env,
        "bench",
        "--rate",
        "8",
        "--duration",
        "4",
        "--warmup",
        "1",
        "--customers",
        "3",
        "--skus",
        "2",
        "--mix",
        "happy=80,declined=10,out_of_stock=10",
        "--baseline",
        "--json",
        "--report",
        str(tmp_path / "bench.html"),
        timeout=240,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    figures = json.loads(ran.stdout)
    assert figures["checkouts"] >= 25 and figures["accepted"] == figures["checkouts"]
    assert figures["completed"] >= 20 and figures["completed_per_s"] > 4
    assert set(figures["outcomes"]) <= {
        "COMPLETED",
        "CANCELLED (payment_declined)",
        "CANCELLED (out_of_stock)",
    }
    assert figures["checkout_to_completed_ms"]["p50"] > 0
    assert {"StockReserved", "PaymentSucceeded", "OrderCompleted"} <= set(figures["steps_ms"])
    assert {"gateway", "order", "inventory"} <= set(figures["cpu_s"])
    assert figures["stack_cpu_ms_per_order"] > 0  # the stack did work for its orders
    assert set(figures["bench_gc_pauses"]) == {"n", "longest_ms", "total_ms"}
    assert figures["baseline_per_s"] > 0 and figures["ratio_to_baseline"] > 0
    # what a bare journey and an order cost each part of the machine
    bare = figures["baseline_cpu_ms_a_journey"]
    assert bare["rabbitmq"] > 0 and bare["postgresql"] > 0 and bare["the bare pipeline"] > 0
    assert bare["the machine, busy"] >= 0.9 * (
        bare["rabbitmq"] + bare["postgresql"] + bare["the bare pipeline"]
    )
    assert 0 < figures["baseline_machine_busy_share"] <= 1.05
    order = figures["cpu_ms_per_order"]
    assert order["order"] > 0 and order["shopctl bench (the load)"] > 0
    assert order["the machine, busy"] >= figures["stack_cpu_ms_per_order"] * 0.9
    assert 0 < figures["machine_busy_share"] <= 1.05
    # measured on the services' own loop (uvicorn's uvloop): on asyncio's the
    # bare pipeline did 11-28 % fewer journeys, flattering the ratio
    assert figures["machine"].endswith("uvloop loop"), figures["machine"]

    page = (tmp_path / "bench.html").read_text()
    assert "orders completed each second" in page and "new uPlot(" in page
    assert "memory by part" in page and "CPU by part" in page and "database sessions" in page

    # a flood keeps its orders in flight until each is over: never more
    # than --in-flight at once, and none left going at the end
    flooded = shopctl(
        env,
        "bench",
        "--flood",
        "--in-flight",
        "4",
        "--duration",
        "3",
        "--warmup",
        "0",
        "--customers",
        "3",
        "--skus",
        "2",
        "--json",
        timeout=120,
    )
    assert flooded.returncode == 0, flooded.stdout[-3000:] + flooded.stderr[-3000:]
    flood = json.loads(flooded.stdout)
    assert flood["mode"] == "flood, 4 orders in flight"
    assert "not ended" not in flood["outcomes"] and flood["checkouts"] >= 4
    assert flood["completed_per_s"] > 0
    assert flood["queues_at_end"] == {}
    # KEDA's rule on the consumers' queues, read from the broker during it
    keda = flood["keda"]
    assert keda["samples"] >= 1 and keda["unread"] == 0, keda
    assert set(keda["peak"]) == {"order", "inventory", "payment", "shipping"}
    for peak in keda["peak"].values():
        assert peak["replicas"] == max(2, -(-peak["messages"] // 64)), keda
    # not one order leaves before one of the four before it is over
    assert 1 <= flood["most_in_flight"] <= 4
    # its tap took only the orders' ends; their steps were read back from
    # the stack's event stream after the run: every accepted order's
    assert flood["steps_ms"]["OrderCreated"]["n"] == flood["accepted"]
    completed = flood["outcomes"].get("COMPLETED", 0)
    assert completed and flood["steps_ms"]["ShippingCreated"]["n"] == completed

    assert shopctl(env, "bench").returncode == 2  # neither --rate nor --flood
    assert shopctl(env, "bench", "--flood", "--mix", "sad=1").returncode == 2
