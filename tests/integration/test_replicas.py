"""Replicas of one service starting at the same moment on a fresh broker:
they race on declaring the same quorum queues and must all end up consuming."""

from __future__ import annotations

import asyncio
import uuid

from services.common.consumer import Subscription
from services.common.events import OrderCompleted, OrderCreated, PaymentFailed
from services.common.runtime import ServiceRuntime
from tests.integration.test_consumer import count_effect


async def test_replicas_starting_together_all_consume(settings):
    subscriptions = [
        Subscription(OrderCompleted, count_effect),
        Subscription(OrderCreated, count_effect),
        Subscription(PaymentFailed, count_effect),
    ]
    for _ in range(3):
        fresh = settings.model_copy(update={"service_name": f"svc{uuid.uuid4().hex[:6]}"})
        replicas = [ServiceRuntime(fresh, subscriptions=subscriptions) for _ in range(3)]
        try:
            await asyncio.gather(*(r.start() for r in replicas))
            counts = await replicas[0].consumers.consumer_counts()
            assert set(counts.values()) == {3}, counts
        finally:
            await asyncio.gather(*(r.stop() for r in replicas))


async def test_subscribing_retries_on_a_fresh_channel_after_a_broker_error(settings, amqp):
    """The broker refuses the first attempts (here: a queue declared with other
    arguments, PRECONDITION_FAILED closes the channel); once the cause is gone
    the runner subscribes on a new channel."""
    from tests.conftest import eventually

    runtime = ServiceRuntime(settings, subscriptions=[Subscription(OrderCompleted, count_effect)])
    queue = f"{settings.service_name}.order.completed"
    channel = await amqp.channel()
    await channel.declare_queue(queue, durable=True)  # classic, no arguments: a conflict
    starting = asyncio.create_task(runtime.start())
    try:
        await eventually(lambda: runtime.consumers.subscribe_failures >= 1, timeout=15)
        assert not starting.done()
        await channel.queue_delete(queue)
        await asyncio.wait_for(starting, 30)
        counts = await runtime.consumers.consumer_counts()
        assert counts == {queue: 1}
    finally:
        starting.cancel()
        await runtime.stop()
