"""The bench's arithmetic: the mix, the percentiles, the summary of a run."""

from __future__ import annotations

import asyncio
import os
import time

import orjson
import pytest

from shopctl.bench.flood import BenchResult, Checkout, OrderEnds, growth, parse_mix, percentiles
from shopctl.errors import ShopError
from shopctl.observe.timeline import TimelineStore, parse_event


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
    # a flood reads an order's steps back after the run: "early" ended
    # before the window all the same
    result.store.add(event("StockReserved", "early", 130.0, "early-1", 3))
    result.cpu_s = {"order": 0.03, "gateway": 0.01, "shopctl bench (the load)": 5.0}
    result.gc_pauses_ms = [1.5, 12.0, 0.5]
    result.machine_busy_s, result.cpu_window_s = 0.09, 2.0
    summary = result.summary()
    assert summary["stack_cpu_ms_per_order"] == 20.0  # 40 ms over 2 orders
    # every part an order, the load and the machine too
    assert summary["cpu_ms_per_order"] == {
        "order": 15.0,
        "gateway": 5.0,
        "shopctl bench (the load)": 2500.0,
        "the machine, busy": 45.0,
        "the rest of the machine": 0.0,
    }
    assert summary["machine_busy_share"] == round(0.09 / (2.0 * (os.cpu_count() or 1)), 3)
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

    from shopctl.bench.flood import process_table

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


def test_the_machines_busy_time_leaves_out_idle_iowait_and_steal():
    from shopctl.bench.flood import machine_busy_s

    ticks = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat = f"cpu  {3 * ticks} 0 {ticks} {50 * ticks} {7 * ticks} 0 {ticks} {9 * ticks} 0 0\n"
    assert machine_busy_s(stat) == 5.0
    # the real one moves with this process's work
    before = machine_busy_s()
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    assert machine_busy_s() - before >= 0.15


def test_cpu_a_unit_by_part_names_what_no_part_accounts_for():
    from shopctl.bench.flood import MACHINE, OTHERS, busy_share, per_unit_ms

    figures = per_unit_ms({"rabbitmq": 0.4, "order": 1.0, MACHINE: 2.0}, units=100)
    assert figures == {"rabbitmq": 4.0, "order": 10.0, MACHINE: 20.0, OTHERS: 6.0}
    # more accounted for than the machine counted (two readings a moment
    # apart): nothing is left over, never less than nothing
    assert per_unit_ms({"order": 1.0, MACHINE: 0.9}, units=10)[OTHERS] == 0.0
    assert per_unit_ms({"order": 1.0}, units=0) == {}
    cpus = os.cpu_count() or 1
    assert busy_share(cpus * 5.0, window_s=10.0) == 0.5
    assert busy_share(1.0, window_s=0.0) is None


async def test_the_baseline_window_reads_the_parts_at_both_ends_of_the_measure():
    """keep_in_flight's warm-up is not counted: the parts are read when the
    measured part starts and when it ends, and the window keeps the
    difference with its journeys and its wall time."""
    from shopctl.bench.baseline import Window, keep_in_flight

    loop = asyncio.get_running_loop()
    readings: list[float] = []
    done = 0
    room = asyncio.Semaphore(4)
    journeys: set[asyncio.Task[None]] = set()

    def parts() -> dict[str, float]:
        readings.append(loop.time())
        return {"rabbitmq": 10.0 * len(readings), "machine": 3.0 * len(readings)}

    async def start_journey() -> None:
        async def journey() -> None:
            nonlocal done
            await asyncio.sleep(0.01)
            done += 1
            room.release()

        task = loop.create_task(journey())
        journeys.add(task)
        task.add_done_callback(journeys.discard)

    window = Window(parts=parts)
    started = loop.time()
    rate = await keep_in_flight(room, start_journey, lambda: done, 0.4, window)
    assert len(readings) == 2
    assert readings[0] - started >= 0.1  # after the warm-up (a quarter of the run)
    assert window.parts_cpu_s == {"rabbitmq": 10.0, "machine": 3.0}
    assert 0.35 <= window.wall_s <= 0.6
    assert window.journeys > 0 and rate == window.journeys / 0.4


def test_an_orders_cost_is_shown_beside_a_bare_journeys():
    from rich.console import Console

    from shopctl.bench.flood import BARE, LOAD, MACHINE, OTHERS
    from shopctl.commands.bench import _cost_against_bare

    figures = {
        "baseline_cpu_ms_a_journey": {
            "rabbitmq": 4.3,
            "postgresql": 3.1,
            BARE: 8.9,
            MACHINE: 17.1,
            OTHERS: 0.8,
        },
        "baseline_machine_busy_share": 0.78,
        "cpu_ms_per_order": {
            "rabbitmq": 7.4,
            "postgresql": 7.1,
            "order": 7.2,
            "cart": 3.1,
            LOAD: 3.8,
            MACHINE: 29.1,
            OTHERS: 0.5,
        },
        "machine_busy_share": 0.99,
    }
    console = Console(width=120, record=True)
    console.print(_cost_against_bare(figures))
    text = console.export_text()
    assert "a bare journey (78% busy)" in text and "an order (99% busy)" in text
    rows = {line.split("│")[1].strip(): line.split("│")[2:4] for line in text.splitlines()[4:-1]}
    assert [c.strip() for c in rows["rabbitmq"]] == ["4.3", "7.4"]
    # the services summed: order and cart, not the load or the machine
    assert [c.strip() for c in rows["the Python: the bare pipeline / the services"]] == [
        "8.9",
        "10.3",
    ]
    assert [c.strip() for c in rows["the load (the bench)"]] == ["-", "3.8"]
    assert [c.strip() for c in rows[MACHINE]] == ["17.1", "29.1"]
