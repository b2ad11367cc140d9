"""The TUI under a burst: how long from an event's publish to its display,
and whether keys are answered meanwhile.

    python bench/tui_lag.py [--rate 1000] [--duration 10]

A separate process publishes sagas of five events (CartCheckedOut ...
OrderCompleted) to shop.events on a virtual host of this run's own, at
``--rate`` events a second, open loop (each event carries its publish time).
The TUI runs headless (Textual's run_test at 120x40) with its real tap; each
event's lag is the time of the first screen update that shows it minus the
time it was published. Twice a
second a key switches panes and the time the app takes to handle it is kept.
Prints the lag by second (p50, p99, max), the key latencies and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEPS = (
    ("CartCheckedOut", "cart", "cart.checked_out"),
    ("OrderCreated", "order", "order.created"),
    ("StockReserved", "inventory", "stock.reserved"),
    ("PaymentSucceeded", "payment", "payment.succeeded"),
    ("OrderCompleted", "order", "order.completed"),
)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def publish(url: str, rate: int, duration: float, ready: multiprocessing.Event) -> None:
    import aio_pika
    import orjson

    async def run() -> None:
        connection = await aio_pika.connect(url)
        channel = await connection.channel(publisher_confirms=False)
        exchange = await channel.declare_exchange("shop.events", "topic", durable=True)
        ready.wait()
        start = time.perf_counter()
        sent = 0
        sagas: list[tuple[str, str | None]] = []
        while (elapsed := time.perf_counter() - start) < duration:
            due = int(elapsed * rate)
            while sent < due:
                if not sagas or sent % len(STEPS) == 0:
                    sagas = [(str(uuid.uuid4()), None)]
                order, cause = sagas[-1]
                kind, source, key = STEPS[sent % len(STEPS)]
                event_id = str(uuid.uuid4())
                body = {
                    "id": event_id,
                    "type": kind,
                    "source": source,
                    "time": datetime.now(UTC).isoformat(),
                    "correlationid": order,
                    "causationid": cause,
                    "data": {"order_id": order},
                }
                sagas[-1] = (order, event_id)
                await exchange.publish(aio_pika.Message(orjson.dumps(body)), routing_key=key)
                sent += 1
            await asyncio.sleep(0.005)
        await connection.close()
        print(f"published {sent} events in {time.perf_counter() - start:.1f} s", flush=True)

    asyncio.run(run())


async def measure(url: str, rate: int, duration: float) -> None:
    from textual import events

    from tui.app import ShopTui

    app = ShopTui(None, broker_url=url, history_s=0)
    # "drawn" is the screen's update that first shows an event: the app's
    # own mark comes after the next refresh once the app is idle, which a
    # burst can put off by frames
    from textual.screen import Screen

    refresh = Screen._compositor_refresh
    paints: list[float] = []  # when each screen update was done

    def refreshed(screen: Screen) -> None:
        refresh(screen)
        painted = getattr(app, "painted", None)
        if painted is not None:
            painted()
        paints.append(time.time())

    Screen._compositor_refresh = refreshed  # type: ignore[method-assign]
    ready = multiprocessing.Event()
    publisher = multiprocessing.Process(target=publish, args=(url, rate, duration, ready))
    publisher.start()
    keys: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        while app.tap_state != "live":
            await pilot.pause(0.05)
        started = time.time()
        ready.set()
        pane = "2"
        while time.time() - started < duration + 2:
            await asyncio.sleep(0.5)
            # a key as the terminal delivers it (Pilot.press would wait for idle)
            key = events.Key(pane, pane)
            key.set_sender(app)
            handled = len(app.keys_handled)
            before = time.perf_counter()
            app._driver.send_message(key)
            while len(app.keys_handled) == handled and time.perf_counter() - before < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            keys.append(time.perf_counter() - before)
            pane = "1" if pane == "2" else "2"
        # an event is on the screen at the first update done after the app
        # marked it drawn (an app that marks at paint: that update; one that
        # marks when it hands the event to its widgets: the next one)
        shown = {}
        for event_id, marked in app.shown_at.items():
            at = bisect.bisect_left(paints, marked)
            if at < len(paints):
                shown[event_id] = paints[at]
        events = [e for t in app.store.timelines.values() for e in t]
    publisher.join()
    by_second: dict[int, list[float]] = {}
    for event in events:
        if event.id in shown:
            lag = shown[event.id] - event.at
            by_second.setdefault(int(event.at - started), []).append(lag)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or '?'}")
    print(f"rate asked: {rate}/s for {duration:.0f} s; events drawn: {len(shown)}")
    print("second  events  lag p50   lag p99   lag max")
    for second in sorted(by_second):
        lags = sorted(by_second[second])
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"{second:>6}  {len(lags):>6}  {statistics.median(lags) * 1000:6.1f} ms"
            f"  {p99 * 1000:6.1f} ms  {lags[-1] * 1000:6.1f} ms"
        )
    every = sorted(lag for lags in by_second.values() for lag in lags)
    if every:
        print(
            f"all: p50 {statistics.median(every) * 1000:.1f} ms, "
            f"p99 {every[int(len(every) * 0.99)] * 1000:.1f} ms, max {every[-1] * 1000:.1f} ms"
        )
    keys.sort()
    print(
        f"keys during the burst: {len(keys)} pane switches, from key to its action: median "
        f"{statistics.median(keys) * 1000:.0f} ms, max {keys[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    vhost = f"tui-lag-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        asyncio.run(measure(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", args.rate, args.duration))
    finally:
        rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":
    main()
