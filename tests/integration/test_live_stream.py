"""The gateway's live stream reads shop.events only while someone watches,
from a RabbitMQ stream, and a watcher still sees the steps that came before
it (the real broker)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest

from services.common.broker import Broker
from services.common.settings import ServiceSettings
from services.gateway.stream import SagaBroadcaster
from tests.conftest import drop_stream, eventually


async def publish(broker: Broker, saga: str, kind: str) -> str:
    event_id = str(uuid.uuid4())
    body = orjson.dumps({"id": event_id, "type": kind, "correlationid": saga})
    await broker.publish_event(body, "test.live", message_id=event_id, event_type=kind)
    return event_id


@contextlib.asynccontextmanager
async def broadcasting(
    settings: ServiceSettings, idle_s: float = 0.3
) -> AsyncIterator[tuple[Broker, SagaBroadcaster]]:
    """A started broadcaster on a stream of the test's own, stopped and
    its stream deleted at the end."""
    broker = Broker(settings)
    await broker.connect()
    queue = f"test.live.{uuid.uuid4().hex[:8]}"
    broadcaster = SagaBroadcaster(broker, replay_s=5, idle_s=idle_s, queue_name=queue)
    try:
        await broadcaster.start()
        yield broker, broadcaster
    finally:
        await drop_stream(broker, broadcaster)


async def test_the_stream_reads_only_while_watched_and_replays_what_came_before(
    settings: ServiceSettings,
) -> None:
    saga = str(uuid.uuid4())
    async with broadcasting(settings) as (broker, broadcaster):
        before = [await publish(broker, saga, kind) for kind in ("OrderCreated", "StockReserved")]
        await asyncio.sleep(0.3)
        # nobody watches: nothing is read
        assert broadcaster.recent(saga) == [] and not broadcaster.reading

        async with broadcaster.watch(saga) as watcher:
            assert broadcaster.reading
            # the steps published before anyone watched, read back from the stream
            got = [await asyncio.wait_for(watcher.get(), 5) for _ in before]
            assert [e["id"] for e in got] == before
            during = await publish(broker, saga, "PaymentSucceeded")
            assert (await asyncio.wait_for(watcher.get(), 5))["id"] == during

        # the last watcher gone, the reading stops after idle_s
        await eventually(lambda: not broadcaster.reading, timeout=5)
        after = await publish(broker, saga, "OrderCompleted")
        await asyncio.sleep(0.3)  # a reader left on the broker would keep it now
        assert [e["id"] for e in broadcaster.recent(saga)] == [*before, during]

        # a new watcher reads again from replay_s back: the new step comes,
        # the ones read before are not kept or handed twice
        async with broadcaster.watch(saga) as watcher:
            assert (await asyncio.wait_for(watcher.get(), 5))["id"] == after
            await asyncio.sleep(0.3)
            assert watcher.empty()
        assert [e["id"] for e in broadcaster.recent(saga)] == [*before, during, after]


async def test_a_watcher_gets_its_queue_while_the_broker_cannot_be_read(
    settings: ServiceSettings,
) -> None:
    """The stream's reader cannot start (its channel is gone): the watcher
    is still served (the page gets its snapshot), and the next watcher
    tries again."""
    async with broadcasting(settings) as (_, broadcaster):
        assert broadcaster._queue is not None
        await broadcaster._queue.channel.close()
        async with broadcaster.watch(str(uuid.uuid4())) as watcher:
            assert watcher.empty() and not broadcaster.reading


async def test_a_stopped_stream_once_deleted_stays_deleted(settings: ServiceSettings) -> None:
    """Stopped while it reads, the broadcaster lets its stream go: deleted
    afterwards, nothing declares it again. (Deleted under a live reader, the
    broker cancels the reader and aio-pika's recovery declares the stream
    again, bound to every event: later tests then found their unroutable
    events routed.)"""
    async with broadcasting(settings, idle_s=30) as (_, broadcaster):
        async with broadcaster.watch(str(uuid.uuid4())):
            assert broadcaster.reading
        assert broadcaster.reading  # idle_s to go before it would stop by itself
        await broadcaster.stop()
        assert not broadcaster.reading
        await broadcaster.stop()  # twice is harmless

    checker = Broker(settings)
    await checker.connect()
    try:
        await asyncio.sleep(1.0)  # a recovery, were one coming, takes far less
        channel = await checker.channel(prefetch=1)
        with pytest.raises(aio_pika.exceptions.ChannelClosed, match="NOT_FOUND"):
            await channel.declare_queue(broadcaster.queue_name, passive=True)
    finally:
        await checker.close()
