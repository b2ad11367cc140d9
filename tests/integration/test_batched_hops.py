"""Batched hops (settings.batch_max > 1) against the real servers: what was
waiting on a queue handled in one transaction, a savepoint each, acked
together. A failing message rolls back alone; a batch committed and never
acked comes again whole and is recognised; a duplicate inside a batch takes
effect once; two replicas share a queue's batches."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa

from services.common.consumer import Subscription
from services.common.events import Envelope, OrderCompleted
from services.common.outbox import UnitOfWork
from services.common.settings import ServiceSettings
from tests.conftest import eventually
from tests.integration.test_consumer import (
    Service,
    completed_event,
    count_effect,
    get_dead_letters,
)


def batched(settings: ServiceSettings, **more: Any) -> ServiceSettings:
    return settings.model_copy(update={"batch_max": 32, "batch_parallel": 1, **more})


class Gate:
    """Holds the first message's handler until released, so the messages
    published meanwhile wait on the queue and come as one batch."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()
        self.first: str | None = None

    async def __call__(self, event: Envelope[Any]) -> None:
        if self.first is None:
            self.first = str(event.id)
        if str(event.id) == self.first:
            self.entered.set()
            await self.open.wait()


async def publish(service: Service, event: Envelope[Any]) -> None:
    await service.publish(event.to_json(), "order.completed", message_id=str(event.id))


async def test_a_poison_message_in_a_batch_rolls_back_alone(settings, amqp):
    settings = batched(settings, max_attempts=2, retry_base_delay_ms=100)
    gate = Gate()
    poison = uuid.uuid4()

    async def handler(event: Envelope[Any], uow: UnitOfWork) -> None:
        await gate(event)
        await count_effect(event, uow)  # rolled back with the failure, for the poison
        if event.data.order_id == poison:
            raise ValueError("this one is poison")

    async with Service(settings, Subscription(OrderCompleted, handler)) as service:
        runner = service.runtime.consumers
        await publish(service, completed_event())
        await gate.entered.wait()
        neighbours = [completed_event() for _ in range(6)]
        for event in [*neighbours[:3], completed_event(poison), *neighbours[3:]]:
            await publish(service, event)
        await eventually(lambda: sum(len(v) for v in runner._pending.values()) == 7)
        gate.open.set()
        [dead] = await get_dead_letters(amqp, service.queue("order.completed"), 1)

        assert 7 in runner.batch_sizes  # the six and the poison, together
        for event in neighbours:
            assert await service.effects(event.data.order_id) == 1
        assert await service.effects(poison) == 0
        assert "this one is poison" in dead.headers["x-shop-error"]
        assert runner.window is not None
        # nine deliveries (the first, the batch of seven, the poison's second
        # attempt) settled with four frames: the six neighbours' one
        # multiple ack, and one each for the first, the poison's move to its
        # retry delay (past neighbours still in flight) and its dead letter
        assert (runner.window.acked, runner.window.acks) == (9, 4)


async def test_a_batch_committed_and_never_acked_comes_again_and_is_recognised(settings):
    settings = batched(settings)
    gate = Gate()

    async def handler(event: Envelope[Any], uow: UnitOfWork) -> None:
        await gate(event)
        await count_effect(event, uow)

    events = [completed_event() for _ in range(8)]
    async with Service(settings, Subscription(OrderCompleted, handler)) as first:
        runner = first.runtime.consumers
        assert runner.window is not None
        lost: list[Any] = []

        async def die_before_the_ack(*messages: Any) -> None:
            lost.extend(messages)  # the process dies between its COMMIT and its ack

        runner.window.done = die_before_the_ack  # type: ignore[method-assign]
        await publish(first, completed_event())
        await gate.entered.wait()
        for event in events:
            await publish(first, event)
        await eventually(lambda: sum(len(v) for v in runner._pending.values()) == 8)
        gate.open.set()
        await eventually(lambda: len(lost) == 9)
        for event in events:
            assert await first.effects(event.data.order_id) == 1
    # stopped with its deliveries unacked: the broker gives them to the next
    async with Service(settings, Subscription(OrderCompleted, count_effect)) as second:
        queue = second.queue("order.completed")
        await eventually(lambda: second.consumed(queue, "duplicate") == 9, timeout=20)
        for event in events:
            assert await second.effects(event.data.order_id) == 1


async def test_a_duplicate_inside_one_batch_takes_effect_once(settings):
    settings = batched(settings)
    gate = Gate()

    async def handler(event: Envelope[Any], uow: UnitOfWork) -> None:
        await gate(event)
        await count_effect(event, uow)

    async with Service(settings, Subscription(OrderCompleted, handler)) as service:
        runner = service.runtime.consumers
        queue = service.queue("order.completed")
        await publish(service, completed_event())
        await gate.entered.wait()
        twice, other = completed_event(), completed_event()
        for event in (twice, other, twice):  # the same id twice, one batch
            await publish(service, event)
        await eventually(lambda: sum(len(v) for v in runner._pending.values()) == 3)
        gate.open.set()
        await eventually(lambda: service.consumed(queue, "duplicate") == 1)
        await eventually(lambda: service.consumed(queue, "handled") == 3)
        assert 3 in runner.batch_sizes
        assert await service.effects(twice.data.order_id) == 1
        assert await service.effects(other.data.order_id) == 1


async def test_two_replicas_share_a_queues_batches_and_every_event_takes_effect_once(settings):
    settings = batched(settings, batch_parallel=2)
    async with (
        Service(settings, Subscription(OrderCompleted, count_effect)) as one,
        Service(settings, Subscription(OrderCompleted, count_effect)) as two,
    ):
        events = [completed_event() for _ in range(300)]
        # some twice, as a relay sends a row again after a lost confirm.
        # Thirty at a time: each publish waits on its own confirm for at
        # most publish_timeout_s, and 330 at once on a saturated machine
        # (the broker busy with the other tests' stacks) put the last ones
        # behind all the others, past that deadline.
        flood = [*events, *events[::10]]
        for start in range(0, len(flood), 30):
            await asyncio.gather(*(publish(one, event) for event in flood[start : start + 30]))
        queue = one.queue("order.completed")

        def handled() -> float:
            return sum(s.consumed(queue, o) for s in (one, two) for o in ("handled", "duplicate"))

        await eventually(lambda: handled() == 330, timeout=60)
        async with one.runtime.engine.connect() as conn:
            counts = (
                await conn.execute(
                    sa.text("SELECT key, count FROM effects WHERE key = ANY(:keys)"),
                    {"keys": [str(e.data.order_id) for e in events]},
                )
            ).all()
        assert len(counts) == 300 and {count for _, count in counts} == {1}
        sizes = [*one.runtime.consumers.batch_sizes, *two.runtime.consumers.batch_sizes]
        assert max(sizes) > 1, sizes  # a flood is taken in batches
        assert one.consumed(queue, "handled") and two.consumed(queue, "handled")
