"""The bare pipeline `shopctl bench --baseline` compares the saga with: seven
hops of the saga's shape on the same broker and database, without HTTP or
any framework. Each hop takes a message from its quorum queue, in one
transaction records it in an inbox, updates a row and writes an outbox row,
commits, publishes the next message with a publisher confirm and acks.
Flooded for a while; what it completes a second is the machine's own ceiling
for this shape of work."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

HOPS = 7
DATABASE = "shop_bench_baseline"


async def measure_baseline(
    broker_url: str,
    pg_admin_url: str,
    *,
    duration_s: float,
    in_flight: int = 64,
    connections: int = 6,
    progress: Callable[[str], None] = lambda _: None,
    window: Window | None = None,
) -> float:
    """Completed seven-hop journeys a second over ``duration_s``."""
    base, _, _ = pg_admin_url.rpartition("/")
    async with await psycopg.AsyncConnection.connect(pg_admin_url, autocommit=True) as admin:
        await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    url = f"{base}/{DATABASE}"
    run = uuid.uuid4().hex[:6]
    queues = [f"bench.baseline.{run}.{hop}" for hop in range(HOPS)]
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
            await db.execute(
                "CREATE TABLE inbox (event_id uuid PRIMARY KEY, at timestamptz DEFAULT now());"
                "CREATE TABLE counters (hop int PRIMARY KEY, n bigint NOT NULL);"
                "CREATE TABLE outbox (id bigserial PRIMARY KEY, event_id uuid, hop int,"
                " body bytea, published_at timestamptz);"
                f"INSERT INTO counters SELECT g, 0 FROM generate_series(0, {HOPS - 1}) g;"
            )
        return await _flood(
            broker_url, url, queues, duration_s, in_flight, connections, progress, window
        )
    finally:
        async with await psycopg.AsyncConnection.connect(pg_admin_url, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
            )


@dataclass
class Window:
    """What the measured part of a run cost this process: its CPU seconds
    (``time.process_time``, which host steal does not inflate) and the
    journeys that ended in it."""

    cpu_s: float = 0.0
    journeys: int = 0
    # read at both ends of the measured part when given: CPU seconds so far
    # by part of the machine (shopctl.bench.flood.cpu_by_part), so a journey's
    # cost to RabbitMQ and PostgreSQL can be set beside an order's
    parts: Callable[[], dict[str, float]] | None = None
    parts_cpu_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def cpu_ms_a_journey(self) -> float:
        return 1000 * self.cpu_s / self.journeys if self.journeys else float("nan")


async def keep_in_flight(
    room: asyncio.Semaphore,
    start_journey: Callable[[], Awaitable[None]],
    done: Callable[[], int],
    duration_s: float,
    window: Window | None = None,
) -> float:
    """Start a journey whenever ``room`` has a place (a journey gives its
    place back when it ends) for a short warm-up and then ``duration_s``;
    the journeys ``done`` counts as ended inside the measured part, a second."""
    loop = asyncio.get_running_loop()
    counted_from = loop.time() + min(2.0, duration_s / 4)  # a short warm-up
    end = counted_from + duration_s
    mark: int | None = None
    cpu = 0.0
    parts: dict[str, float] = {}
    started = counted_from
    while loop.time() < end:
        await room.acquire()
        if mark is None and loop.time() >= counted_from:
            mark = done()
            cpu = time.process_time()
            if window is not None and window.parts is not None:
                parts = window.parts()
            started = loop.time()
        await start_journey()
    journeys = done() - (mark or 0)
    if window is not None:
        window.cpu_s = time.process_time() - cpu
        window.journeys = journeys
        if window.parts is not None and mark is not None:
            now = window.parts()
            window.parts_cpu_s = {k: v - parts.get(k, 0.0) for k, v in now.items()}
            window.wall_s = loop.time() - started
    return journeys / duration_s


async def _flood(
    broker_url: str,
    url: str,
    queues: list[str],
    duration_s: float,
    in_flight: int,
    connections: int,
    progress: Callable[[str], None],
    window: Window | None,
) -> float:
    done = 0
    room = asyncio.Semaphore(in_flight)
    connection = await aio_pika.connect_robust(broker_url)
    try:
        publisher = await connection.channel(publisher_confirms=True)
        exchange = publisher.default_exchange
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=in_flight)
        declared = [
            await channel.declare_queue(q, durable=True, arguments={"x-queue-type": "quorum"})
            for q in queues
        ]
        async with AsyncConnectionPool(url, min_size=connections, max_size=connections) as pool:

            def hop_of(index: int) -> Callable[[aio_pika.abc.AbstractIncomingMessage], object]:
                async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                    nonlocal done
                    event_id = uuid.UUID(bytes=message.body[:16])
                    async with pool.connection() as db, db.transaction():
                        await db.execute(
                            "INSERT INTO inbox (event_id) VALUES (%s) ON CONFLICT DO NOTHING",
                            (uuid.uuid4(),),
                        )
                        await db.execute("UPDATE counters SET n = n + 1 WHERE hop = %s", (index,))
                        await db.execute(
                            "INSERT INTO outbox (event_id, hop, body) VALUES (%s, %s, %s)",
                            (event_id, index, message.body),
                        )
                    if index + 1 < len(queues):
                        await exchange.publish(
                            aio_pika.Message(message.body, delivery_mode=2),
                            routing_key=queues[index + 1],
                        )
                    else:
                        done += 1
                        room.release()
                    await message.ack()

                return handle

            tags = [await queue.consume(hop_of(index)) for index, queue in enumerate(declared)]

            async def start_journey() -> None:
                body = uuid.uuid4().bytes + b'{"type":"BaselineEvent"}'
                await exchange.publish(
                    aio_pika.Message(body, delivery_mode=2), routing_key=queues[0]
                )

            rate = await keep_in_flight(room, start_journey, lambda: done, duration_s, window)
            progress(f"baseline: {done} journeys of {len(queues)} hops, {rate:.0f}/s")
            for queue, tag in zip(declared, tags, strict=True):
                await queue.cancel(tag)
    finally:
        cleanup = await connection.channel()
        for name in queues:
            try:
                await cleanup.queue_delete(name)
            except Exception:  # best effort: the queue may be gone
                continue
        await connection.close()
    return rate
