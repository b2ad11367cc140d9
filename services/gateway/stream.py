"""The live saga stream: the gateway reads every event while someone
watches an order, fanned out in-process to the SSE clients of each order.

Every event of ``shop.events`` is kept a short while in a RabbitMQ stream
(``STREAM_QUEUE``: an append-only log, read without taking anything out of
it). Nobody watching, nothing is read: reading every event of a flood cost
the gateway half its CPU and RabbitMQ a delivery an event, about 5 % of the
machine (docs/performance-journal.md). The first watcher starts the reading from
``replay_s`` back, so a page opened just after its checkout still sees the
first steps; the reading stops ``idle_s`` after the last watcher left."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import CollectorRegistry, Gauge

from services.common.broker import Broker
from services.common.errors import ApiError

log = logging.getLogger(__name__)

TERMINAL_EVENTS = {"OrderCompleted", "OrderCancelled"}


RECENT_SAGAS = 1000  # sagas whose recent events are kept for late watchers (a few MB)
EVENTS_A_SAGA = 32

# One stream for every gateway process (a stream is read, not consumed):
# every event, kept two minutes, in segments small enough for the age to
# take effect (a whole segment goes at once), never more than 256 MB.
STREAM_QUEUE = "gateway.saga-events"
STREAM_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "2m",
    "x-stream-max-segment-size-bytes": 4_000_000,
    "x-max-length-bytes": 256_000_000,
}
ACK_EVERY = 100  # a stream's reader must ack (its credit); one ack for many
PREFETCH = ACK_EVERY * 10
READ_START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0


class SagaBroadcaster:
    """Reads ``shop.events`` (through ``STREAM_QUEUE``) while watchers wait
    and hands each event to the watchers of its correlation id. It keeps
    the last events of recent sagas, so a watcher that comes after the first
    steps (a page opened just after the checkout) sees them too."""

    def __init__(
        self,
        broker: Broker,
        *,
        replay_s: int = 10,
        idle_s: float = 30.0,
        queue_name: str = STREAM_QUEUE,
    ) -> None:
        self.broker = broker
        self.replay_s = replay_s
        self.idle_s = idle_s
        self.queue_name = queue_name
        self._watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._recent: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._queue: AbstractQueue | None = None
        self._reader: str | None = None  # the consumer tag while reading
        self._switch = asyncio.Lock()
        self._idle: asyncio.Task[None] | None = None
        self._unacked: AbstractIncomingMessage | None = None
        self._unacked_count = 0

    @property
    def reading(self) -> bool:
        return self._reader is not None

    def recent(self, saga: str) -> list[dict[str, Any]]:
        """The saga's events this process has seen lately, oldest first."""
        return list(self._recent.get(saga, ()))

    async def start(self) -> None:
        """Declare the stream and bind it to every event; nothing is read
        until someone watches."""
        channel = await self.broker.channel(prefetch=PREFETCH)
        queue = await channel.declare_queue(
            self.queue_name, durable=True, arguments=STREAM_ARGUMENTS
        )
        await queue.bind(self.broker.settings.events_exchange, routing_key="#")
        self._queue = queue

    async def stop(self) -> None:
        """Stop reading at once, watchers or not, and close the stream's
        channel. A reader left on a stream that is then deleted would have
        aio-pika recover the channel and declare the stream again."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        async with self._switch:
            queue, self._queue = self._queue, None
            if queue is None:
                return
            reader, self._reader = self._reader, None
            self._unacked, self._unacked_count = None, 0
            # bounded: a broker away would keep a robust channel's calls waiting
            with contextlib.suppress(Exception):  # TimeoutError among them
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    if reader is not None:
                        await queue.cancel(reader)
                    await queue.channel.close()

    async def _start_reading(self) -> None:
        async with self._switch:
            if self._queue is None or self._reader is not None:
                return
            self._reader = await self._queue.consume(
                self._on_message,
                arguments={"x-stream-offset": f"{self.replay_s}s"},
                timeout=READ_START_TIMEOUT_S,
            )
            log.info("live stream: reading shop.events (from %d s back)", self.replay_s)

    async def _stop_reading_when_idle(self) -> None:
        await asyncio.sleep(self.idle_s)
        # A watcher that comes now cancels this task; the stop, once begun,
        # ends (a consumer left on the broker would read on unseen).
        await asyncio.shield(self._stop_reading())

    async def _stop_reading(self) -> None:
        async with self._switch:
            if self._watchers or self._queue is None or self._reader is None:
                return
            reader, self._reader = self._reader, None
            await self._queue.cancel(reader)
            await self._ack_read()
            log.info("live stream: nobody watches; reading stopped")

    async def _ack_read(self) -> None:
        """Ack what was read so far in one ack (the stream keeps it anyway:
        the ack is the reader's credit)."""
        message, self._unacked, self._unacked_count = self._unacked, None, 0
        if message is not None:
            try:
                await message.ack(multiple=True)
            except Exception as exc:  # a channel lost meanwhile: its credit went with it
                log.debug("live stream: ack not sent: %s", exc)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._unacked = message
        self._unacked_count += 1
        try:
            event = orjson.loads(message.body)
            saga = str(event["correlationid"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass  # not ours to judge: consumers dead-letter bad messages
        else:
            self.deliver(saga, event)
        if self._unacked_count >= ACK_EVERY:
            await self._ack_read()

    def deliver(self, saga: str, event: dict[str, Any]) -> None:
        """Keep one event of ``saga`` and hand it to the saga's watchers (an
        event kept already, read again after the reading restarted, is not
        kept or handed twice)."""
        kept = self._recent.get(saga)
        if kept is None:
            kept = self._recent[saga] = deque(maxlen=EVENTS_A_SAGA)
            if len(self._recent) > RECENT_SAGAS:
                self._recent.popitem(last=False)
        else:
            event_id = event.get("id")
            if any(e.get("id") == event_id for e in kept):
                return
        kept.append(event)
        for watcher in self._watchers.get(saga, ()):
            with contextlib.suppress(asyncio.QueueFull):
                watcher.put_nowait(event)

    @contextlib.asynccontextmanager
    async def watch(self, saga: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        watcher: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._watchers.setdefault(saga, set()).add(watcher)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        try:
            try:
                await self._start_reading()
            except Exception as exc:  # the broker away: the snapshot still comes
                log.warning("live stream: cannot read shop.events now: %s", exc)
            yield watcher
        finally:
            watchers = self._watchers.get(saga)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[saga]
            if not self._watchers and self._reader is not None and self._idle is None:
                self._idle = asyncio.create_task(self._stop_reading_when_idle())


class StreamSlots:
    """Order streams open at once: at most ``per_customer`` for one
    customer and ``overall`` on this gateway (429 past either); how many
    are open is the ``shop_gateway_open_streams`` gauge."""

    def __init__(self, per_customer: int, overall: int, registry: CollectorRegistry) -> None:
        self.per_customer = per_customer
        self.overall = overall
        self.open: dict[str, int] = {}
        self.gauge = Gauge("shop_gateway_open_streams", "order streams open now", registry=registry)

    def take(self, customer: str) -> Callable[[], None]:
        """One slot for ``customer``, or ApiError 429; returns its release
        (idempotent: the stream's end and the response's both call it)."""
        if sum(self.open.values()) >= self.overall:
            raise ApiError(429, "too many order streams are open; try again soon", retry_after=5)
        if self.open.get(customer, 0) >= self.per_customer:
            raise ApiError(
                429,
                f"you have {self.per_customer} order streams open already; close one",
                retry_after=5,
            )
        self.open[customer] = self.open.get(customer, 0) + 1
        self.gauge.inc()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.open[customer] -= 1
            if not self.open[customer]:
                del self.open[customer]
            self.gauge.dec()

        return release
