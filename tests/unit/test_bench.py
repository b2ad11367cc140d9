"""The bench's arithmetic: the mix, the percentiles, the summary of a run."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from shopctl.bench import BenchResult, Checkout, OrderEnds, growth, parse_mix, percentiles
from shopctl.errors import ShopError
from shopctl.timeline import TimelineStore, parse_event


def test_the_mix_is_read_and_bad_words_are_usage_errors():
    assert parse_mix("happy=90,declined=5,out_of_stock=5") == {
        "happy": 90,
        "declined": 5,
        "out_of_stock": 5,
    }
    for bad in ("happy=x", "sad=3", "happy=0"):
        with pytest.raises(ShopError) as raised:
            parse_mix(bad)
        assert raised.value.exit_code == 2


def test_percentiles_in_milliseconds():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentiles(values) == {"p50": 51.0, "p95": 96.0, "p99": 100.0, "n": 100}
    assert percentiles([]) == {}


def event(kind: str, order: str, at: float, cause: str | None, number: int):
    body = {
        "id": f"{order}-{number}",
        "type": kind,
        "source": "x",
        "correlationid": order,
        "causationid": cause,
        "data": {},
    }
    return parse_event(orjson.dumps(body), "k", seen_at=at)


def test_a_run_is_summed_up_from_its_checkouts_and_their_timelines():
    result = BenchResult("paced 2/s", duration_s=2.0)
    result.measure_started = 100.0
    result.checkouts = [
        Checkout("warmup", 99.0, 99.01, 202, order="w"),  # not measured
        Checkout("happy", 100.0, 100.01, 202, order="a"),
        Checkout("happy", 100.5, 100.52, 202, order="b"),
        Checkout("declined", 101.0, 101.01, 202, order="c"),
        Checkout("happy", 101.5, 101.6, 503),
    ]
    for order, start, end in (("a", 100.02, "OrderCompleted"), ("b", 100.53, "OrderCompleted")):
        result.store.add(event("OrderCreated", order, start, None, 1))
        result.store.add(event(end, order, start + 0.05, f"{order}-1", 2))
    result.store.add(event("OrderCreated", "c", 101.02, None, 1))
    summary = result.summary()
    assert summary["checkouts"] == 4 and summary["accepted"] == 3
    assert summary["completed"] == 2 and summary["completed_per_s"] == 1.0
    assert summary["outcomes"] == {"COMPLETED": 2, "not ended": 1}
    assert summary["errors"] == {"HTTP 503": 1}
    assert summary["checkout_to_completed_ms"]["n"] == 2
    assert summary["steps_ms"]["OrderCompleted"]["p50"] == 50.0


def test_throughput_counts_the_orders_completed_inside_the_measured_window():
    result = BenchResult("flood, 2 orders in flight", duration_s=2.0)
    result.measure_started = 100.0
    result.checkouts = [
        Checkout("warmup", 99.0, 99.01, 202, order="w"),  # completes inside: counted
        Checkout("warmup", 99.2, 99.21, 202, order="w2"),  # inside too
        Checkout("warmup", 99.5, 99.51, 202, order="early"),  # completes before: not
        Checkout("happy", 100.5, 100.51, 202, order="a"),  # inside
        Checkout("happy", 101.5, 101.51, 202, order="late"),  # after the window: not
    ]
    for order, start, end in (
        ("w", 99.0, 100.3),
        ("w2", 99.2, 101.0),
        ("early", 99.5, 99.9),
        ("a", 100.5, 100.8),
    ):
        result.store.add(event("OrderCreated", order, start, None, 1))
        result.store.add(event("OrderCompleted", order, end, f"{order}-1", 2))
    result.store.add(event("OrderCreated", "late", 101.6, None, 1))
    result.store.add(event("OrderCompleted", "late", 102.4, "late-1", 2))
    summary = result.summary()
    assert summary["completed"] == 3 and summary["completed_per_s"] == 1.5
    # the measured checkouts' own outcomes are still all told
    assert summary["outcomes"] == {"COMPLETED": 2}
    # w, w2 and early overlap at 99.5; "late" never ended but a had by then
    assert summary["most_in_flight"] == 3


async def test_a_flood_slot_is_held_until_its_order_ends():
    store = TimelineStore()
    ends = OrderEnds(store)
    waiting = asyncio.ensure_future(ends.wait("o1", timeout_s=5))
    await asyncio.sleep(0.01)
    for step in (
        event("OrderCreated", "o1", 1.0, None, 1),
        event("StockReserved", "o1", 1.1, "o1-1", 2),
    ):
        ends.seen(store.add(step))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # not over yet
    ends.seen(store.add(event("OrderCancelled", "o1", 1.2, "o1-2", 3)))
    assert await asyncio.wait_for(waiting, 1) is True
    # an order already over when asked: at once; one that never ends: False at the timeout
    assert await asyncio.wait_for(ends.wait("o1", timeout_s=5), 1) is True
    assert await ends.wait("never", timeout_s=0.05) is False


def test_stack_cpu_per_order_counts_the_orders_that_ended_while_cpu_was_counted():
    result = BenchResult("paced 2/s", duration_s=2.0)
    result.measure_started = 100.0
    result.checkouts = [
        Checkout("warmup", 98.0, 98.01, 202, order="early"),  # ended before: not counted
        Checkout("warmup", 99.0, 99.01, 202, order="w"),  # ended inside the window
        Checkout("happy", 100.0, 100.01, 202, order="a"),
        Checkout("happy", 100.5, 100.52, 202, order="b"),  # not ended: not counted
    ]
    for order, start in (("early", 98.02), ("w", 99.98), ("a", 100.02)):
        result.store.add(event("OrderCreated", order, start, None, 1))
        result.store.add(event("OrderCompleted", order, start + 0.05, f"{order}-1", 2))
    result.store.add(event("OrderCreated", "b", 100.53, None, 1))
    result.cpu_s = {"order": 0.03, "gateway": 0.01, "shopctl bench (the load)": 5.0}
    result.gc_pauses_ms = [1.5, 12.0, 0.5]
    summary = result.summary()
    assert summary["stack_cpu_ms_per_order"] == 20.0  # 40 ms over 2 orders
    assert summary["bench_gc_pauses"] == {"n": 3, "longest_ms": 12.0, "total_ms": 14.0}


def test_growth_compares_the_first_third_of_a_run_with_the_last():
    steady = [
        {"latency_p50_ms": 90 + i % 3, "memory_mb": 900 + i % 2, "db_connections": 40}
        for i in range(9)
    ]
    verdicts = growth(steady)
    assert all(v.startswith("steady") for v in verdicts.values()), verdicts
    leaking = [
        {"latency_p50_ms": 90 + 20 * i, "memory_mb": 900 + 30 * i, "db_connections": 40 + i}
        for i in range(9)
    ]
    verdicts = growth(leaking)
    assert all(v.startswith("GROWS") for v in verdicts.values()), verdicts
    assert growth(steady[:2]) == {}


def test_postgresqls_cpu_includes_the_backends_that_ended():
    """A PostgreSQL backend that ends (its connection closed) leaves its CPU
    with the postmaster that reaps it: the table counts it there. Here this
    test process stands in for the postmaster, a child that burns CPU for
    the backend."""
    import os
    import subprocess
    import sys

    from shopctl.bench import process_table

    me = {"postgresql": [os.getpid()], "order": [os.getpid()]}
    before = process_table(me)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass",
        ],
        check=True,
    )
    after = process_table(me)
    own = after["order"][os.getpid()][0] - before["order"][os.getpid()][0]
    with_ended = after["postgresql"][os.getpid()][0] - before["postgresql"][os.getpid()][0]
    assert with_ended - own >= 0.25
