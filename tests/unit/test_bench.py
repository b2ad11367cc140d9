"""The bench's arithmetic: the mix, the percentiles, the summary of a run."""

from __future__ import annotations

import orjson
import pytest

from shopctl.bench import BenchResult, Checkout, growth, parse_mix, percentiles
from shopctl.errors import ShopError
from shopctl.timeline import parse_event


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
