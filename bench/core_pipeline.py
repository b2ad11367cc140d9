"""The bare pipeline against the same seven hops run through the shared core.

`shopctl bench --baseline` floods a bare seven-hop pipeline (psycopg and
aio-pika by hand, shopctl/bench/baseline.py). This runs it, then the same shape
through `services.common` in one process: one ServiceRuntime, seven
subscriptions, each hop a unit of work (inbox row, an UPDATE, the next
event to the outbox), handed to the relay, published with a confirm, acked;
the saga's own event types and payloads, the services' logging to a file.
No HTTP, no gateway, one process each, 64 journeys in flight each, one after
the other in the same run: what is left between the two is the shared
core's own cost a message (validation, SQLAlchemy, the outbox relay, metrics,
logging), the part of the ratio no service's code can change.

    python bench/core_pipeline.py [--duration 15] [--rounds 2] [--profile out.raw]
        [--sample out.raw]

With ``--profile`` the core run is recorded by py-spy (``--gil``, raw
format) for bench/flamegraph.py; with ``--sample`` by the on-CPU sampler
(bench/cpu_sampler.py, the same format), which sees only where the CPU
went. Prints each run and the core/bare ratio,
by journeys a second, by this process's CPU a journey in the measured
part (steadier on a shared machine: host steal slows a run but does not add
to its CPU time) and by the machine's busy CPU a journey (RabbitMQ's and
PostgreSQL's share included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging.config
import os
import platform
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import psycopg
import sqlalchemy as sa
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu_sampler import CpuSampler  # noqa: E402
from services.common import migrations  # noqa: E402
from services.common.consumer import Subscription  # noqa: E402
from services.common.db import Prepared  # noqa: E402
from services.common.events import (  # noqa: E402
    CartCheckedOut,
    EventData,
    LineItem,
    OrderCompleted,
    OrderCreated,
    PaymentDetails,
    PaymentSucceeded,
    ShippingAddress,
    ShippingCreated,
    StockReleased,
    StockReserved,
)
from services.common.outbox import UnitOfWork  # noqa: E402
from services.common.runtime import ServiceRuntime  # noqa: E402
from services.common.settings import ServiceSettings  # noqa: E402
from shopctl.bench.baseline import Window, keep_in_flight, measure_baseline  # noqa: E402
from shopctl.bench.flood import MACHINE, machine_busy_s  # noqa: E402

DATABASE = "shop_bench_core"
BROKER = os.environ.get("SHOP_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN = os.environ.get("SHOP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADDRESS = ShippingAddress(name="Ada", line1="1 Way", city="London", postal_code="N1", country="GB")
ITEMS = [LineItem(sku="SKU-1", quantity=2, unit_price_cents=617)]
CUSTOMER = uuid.uuid4()


def _data(event_type: type[EventData], order_id: uuid.UUID) -> EventData:
    """The saga's payload of ``event_type`` for one order."""
    common: dict[str, Any] = {"order_id": order_id}
    carried: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "total_cents": 1234,
        "currency": "EUR",
        "payment": PaymentDetails(card_token="tok_visa"),
        "shipping_address": ADDRESS,
    }
    if event_type is CartCheckedOut:
        return CartCheckedOut(**common, cart_id=order_id, items=ITEMS, **carried)
    if event_type is OrderCreated:
        return OrderCreated(**common, items=ITEMS, **carried)
    if event_type is StockReserved:
        return StockReserved(**common, items=ITEMS, **carried)
    if event_type is PaymentSucceeded:
        return PaymentSucceeded(
            **common,
            payment_id=order_id,
            amount_cents=1234,
            currency="EUR",
            customer_id=CUSTOMER,
            shipping_address=ADDRESS,
        )
    if event_type is ShippingCreated:
        return ShippingCreated(**common, shipment_id=order_id, tracking_number="SHP1")
    if event_type is OrderCompleted:
        return OrderCompleted(**common)
    return StockReleased(**common, items=ITEMS)


# Seven hops: a hop takes the first type of its pair and emits the second.
CHAIN = (
    CartCheckedOut,
    OrderCreated,
    StockReserved,
    PaymentSucceeded,
    ShippingCreated,
    OrderCompleted,
    StockReleased,
)
# As the services' handlers write theirs: SQLAlchemy Core, prepared once.
_counters = sa.table("counters", sa.column("hop", sa.Integer), sa.column("n", sa.BigInteger))
_COUNT = Prepared(
    _counters.update().where(_counters.c.hop == sa.bindparam("hop")).values(n=_counters.c.n + 1)
)


async def measure_core(
    duration_s: float, in_flight: int = 64, window: Window | None = None
) -> float:
    """Completed seven-hop journeys a second through the shared core."""
    async with await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True) as admin:
        await admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
        )
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    url = PG_ADMIN.rpartition("/")[0] + "/" + DATABASE
    try:
        migrations.upgrade(url, ROOT / "services" / "inventory" / "migrations")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
            await db.execute("CREATE TABLE counters (hop int PRIMARY KEY, n bigint NOT NULL)")
            await db.execute("INSERT INTO counters SELECT g, 0 FROM generate_series(0, 6) g")
        return await _flood(url, duration_s, in_flight, window)
    finally:
        async with await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
            )


async def _flood(url: str, duration_s: float, in_flight: int, window: Window | None) -> float:
    done = 0
    room = asyncio.Semaphore(in_flight)
    run = uuid.uuid4().hex[:6]

    def hop(index: int) -> Subscription:
        async def handle(event: Any, uow: UnitOfWork) -> None:
            nonlocal done
            await uow.db.run(_COUNT, {"hop": index})
            if index + 1 < len(CHAIN):
                uow.emit(_data(CHAIN[index + 1], event.data.order_id))
            else:
                done += 1
                room.release()

        return Subscription(CHAIN[index], handle)

    settings = ServiceSettings(
        service_name=f"corebench{run}",
        database_url=url,
        broker_url=BROKER,
        events_exchange=f"corebench.{run}",
        dead_letter_exchange=f"corebench.{run}.dlx",
        db_pool_size=6,
        db_max_overflow=0,
        prefetch=in_flight,
        fault_injection=False,
    )
    runtime = ServiceRuntime(settings, subscriptions=[hop(i) for i in range(len(CHAIN))])
    await runtime.start()

    async def start_journey() -> None:
        async with runtime.unit_of_work() as uow:
            order_id = uuid.uuid4()
            uow.emit(_data(CHAIN[0], order_id), correlation_id=order_id)

    try:
        return await keep_in_flight(room, start_journey, lambda: done, duration_s, window)
    finally:
        await runtime.stop()
        connection = await aio_pika.connect(BROKER)
        channel = await connection.channel()
        try:
            for queue in runtime.consumers.queue_names:
                for name in (queue, f"{queue}.dlq"):
                    await channel.queue_delete(name)
            await channel.exchange_delete(settings.events_exchange)
            await channel.exchange_delete(settings.dead_letter_exchange)
        finally:
            await connection.close()


def _machine() -> dict[str, float]:
    return {MACHINE: machine_busy_s()}


def _machine_ms(window: Window) -> float:
    """The machine's busy CPU a journey in the measured part (RabbitMQ,
    PostgreSQL and this process, and whatever else ran meanwhile)."""
    busy = window.parts_cpu_s.get(MACHINE)
    return 1000 * busy / window.journeys if busy is not None and window.journeys else float("nan")


def _profile(out: Path) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--gil",
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "-p",
            str(os.getpid()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the core runs")
    parser.add_argument(
        "--sample", type=Path, help="on-CPU samples of the core runs (bench/cpu_sampler.py)"
    )
    args = parser.parse_args()

    sampler = CpuSampler() if args.sample else None
    log_dir = Path(tempfile.mkdtemp(prefix="corebench-"))
    config = json.loads((ROOT / "services" / "common" / "logging.json").read_text())
    config["handlers"]["stderr"] = {
        "class": "logging.FileHandler",
        "formatter": "timestamped",
        "filename": str(log_dir / "core.log"),
    }
    logging.config.dictConfig(config)

    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, uvloop"
    )
    print(f"{args.rounds} rounds of {args.duration:.0f} s each, 64 journeys of 7 hops in flight")
    for round_ in range(1, args.rounds + 1):
        # the machine's busy CPU too: RabbitMQ's and PostgreSQL's share of a journey
        bare_window, core_window = (Window(parts=_machine) for _ in range(2))
        bare = await measure_baseline(
            BROKER, PG_ADMIN, duration_s=args.duration, window=bare_window
        )
        spy = _profile(args.profile) if args.profile else None
        if sampler is not None:
            sampler.start()
        core = await measure_core(args.duration, window=core_window)
        if sampler is not None:
            sampler.stop()
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait()
        bare_ms, core_ms = bare_window.cpu_ms_a_journey, core_window.cpu_ms_a_journey
        bare_machine, core_machine = _machine_ms(bare_window), _machine_ms(core_window)
        print(
            f"round {round_}: bare {bare:6.1f}/s ({bare_ms:5.2f} CPU-ms a journey, "
            f"machine {bare_machine:5.2f}), core {core:6.1f}/s ({core_ms:5.2f} CPU-ms, "
            f"machine {core_machine:5.2f}), core/bare {core / bare:4.0%}, "
            f"by CPU a journey {bare_ms / core_ms:4.0%}, "
            f"by the machine's {bare_machine / core_machine:4.0%}"
        )
    if sampler is not None:
        print(f"{sampler.write(args.sample)} on-CPU samples of the core runs in {args.sample}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())  # the loop the services run on (uvicorn's)
