"""The consumer runner against the real servers: inbox, retries, dead letters
(C1-C5) and events emitted from handlers."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
import urllib.parse
import uuid
from typing import Any

import aio_pika
import orjson
import pytest
import sqlalchemy as sa

from services.common.consumer import (
    ATTEMPTS,
    ERROR,
    REASON,
    Subscription,
    dead_letter_queue_name,
    queue_name,
    retry_delays_ms,
    retry_queue_name,
)
from services.common.events import (
    Envelope,
    OrderCompleted,
    OrderCreated,
    PaymentDetails,
    PaymentFailed,
    ShippingAddress,
    new_event,
)
from services.common.outbox import UnitOfWork
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from tests.conftest import eventually


async def count_effect(event: Envelope[Any], uow: UnitOfWork) -> None:
    """The test service's domain: count how often each order took effect."""
    await uow.conn.execute(
        sa.text(
            "INSERT INTO effects (key, count) VALUES (:k, 1) "
            "ON CONFLICT (key) DO UPDATE SET count = effects.count + 1"
        ),
        {"k": str(event.data.order_id)},
    )


class Service:
    """A runtime with subscriptions, plus helpers to feed and inspect it."""

    def __init__(self, settings: ServiceSettings, *subscriptions: Subscription) -> None:
        self.settings = settings
        self.runtime = ServiceRuntime(settings, subscriptions=subscriptions)

    async def __aenter__(self) -> Service:
        await self.runtime.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop()

    def queue(self, routing_key: str) -> str:
        return queue_name(self.settings.service_name, routing_key)

    async def effects(self, key: object) -> int:
        async with self.runtime.engine.connect() as conn:
            value = (
                await conn.execute(
                    sa.text("SELECT count FROM effects WHERE key = :k"), {"k": str(key)}
                )
            ).scalar()
        return int(value or 0)

    async def publish(self, body: bytes, routing_key: str, **properties: Any) -> None:
        await self.runtime.broker.publish_event(
            body,
            routing_key,
            message_id=properties.pop("message_id", str(uuid.uuid4())),
            event_type=properties.pop("event_type", "test"),
        )

    def consumed(self, queue: str, outcome: str) -> float:
        value = self.runtime.metrics.registry.get_sample_value(
            "shop_events_consumed_total", {"queue": queue, "outcome": outcome}
        )
        return value or 0.0


def completed_event(order_id: uuid.UUID | None = None) -> Envelope[OrderCompleted]:
    order_id = order_id or uuid.uuid4()
    return new_event(OrderCompleted(order_id=order_id), source="test", correlation_id=order_id)


async def get_dead_letters(amqp: aio_pika.abc.AbstractRobustConnection, queue: str, n: int) -> list:
    """Take ``n`` messages off a dead-letter queue (polling with a deadline)."""
    channel = await amqp.channel()
    dlq = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
    found: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def take() -> bool:
        message = await dlq.get(fail=False)
        if message is not None:
            await message.ack()
            found.append(message)
        return len(found) >= n

    await eventually(take, timeout=20)
    assert await dlq.get(fail=False) is None, "more dead letters than expected"
    return found


async def test_same_event_delivered_twice_changes_state_once(settings):
    """C1-C3: a redelivery, a duplicate and three copies at once take effect once."""
    async with Service(settings, Subscription(OrderCompleted, count_effect)) as service:
        event = completed_event()
        body = event.to_json()
        await service.publish(body, "order.completed", message_id=str(event.id))
        await eventually(lambda: service.effects(event.data.order_id))
        await service.publish(body, "order.completed", message_id=str(event.id))
        await asyncio.gather(
            *(service.publish(body, "order.completed", message_id=str(event.id)) for _ in range(3))
        )
        queue = service.queue("order.completed")
        await eventually(lambda: service.consumed(queue, "duplicate") >= 4)
        assert await service.effects(event.data.order_id) == 1
        assert service.consumed(queue, "handled") == 1


def queue_types(broker_url: str) -> dict[str, str]:
    """The broker's own word on its queues' types (rabbitmqctl, beside the
    machine's RabbitMQ), by name, in the test's virtual host."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(broker_url).path[1:]) or "/"
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("no rabbitmqctl beside the broker to ask the queues' types")
    listed = subprocess.run(
        [ctl, "list_queues", "-q", "-p", vhost, "name", "type", "--formatter", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {q["name"]: q["type"] for q in json.loads(listed)}


async def test_failing_handler_is_retried_with_growing_delay_then_dead_lettered(settings, amqp):
    # delays of 0.4 s then 0.8 s: their difference stays above a loaded
    # machine's scheduling jitter (150 then 300 ms did not, beside a stack)
    settings = settings.model_copy(update={"retry_base_delay_ms": 400})
    attempts: list[float] = []

    async def always_fails(event: Envelope[Any], uow: UnitOfWork) -> None:
        attempts.append(time.monotonic())
        await count_effect(event, uow)  # rolled back with the failure
        raise ValueError("the warehouse API is down")

    async with Service(settings, Subscription(OrderCompleted, always_fails)) as service:
        event = completed_event()
        await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        queue = service.queue("order.completed")
        [dead] = await get_dead_letters(amqp, queue, 1)

        assert len(attempts) == settings.max_attempts == 3
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[0] >= settings.retry_delay_ms(1) / 1000
        assert gaps[1] >= settings.retry_delay_ms(2) / 1000
        assert gaps[1] > gaps[0]
        assert dead.headers[REASON] == "handler_failed"
        assert dead.headers[ATTEMPTS] == 3
        assert "the warehouse API is down" in dead.headers[ERROR]
        assert dead.body == event.to_json()  # nothing lost: the original, whole
        assert await service.effects(event.data.order_id) == 0
        assert service.consumed(queue, "retried") == 2
        # all of it on quorum queues (replicated on a cluster's nodes), on this
        # machine's RabbitMQ as on the docker runtime's and a cluster's
        types = queue_types(settings.broker_url)
        retry_queues = [retry_queue_name(d) for d in retry_delays_ms(settings)]
        for name in (queue, dead_letter_queue_name(queue), *retry_queues):
            assert types[name] == "quorum", name


async def test_handler_that_recovers_takes_effect_once(settings):
    failures_left = [2]

    async def flaky(event: Envelope[Any], uow: UnitOfWork) -> None:
        await count_effect(event, uow)
        if failures_left[0]:
            failures_left[0] -= 1
            raise ConnectionError("transient")

    async with Service(settings, Subscription(OrderCompleted, flaky)) as service:
        event = completed_event()
        await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        await eventually(lambda: service.effects(event.data.order_id))
        assert await service.effects(event.data.order_id) == 1
        assert service.consumed(service.queue("order.completed"), "handled") == 1


async def test_bad_messages_are_dead_lettered_with_a_reason_and_good_ones_flow(settings, amqp):
    """C5: non-JSON, a wrong envelope, an unknown or unexpected type."""
    async with Service(settings, Subscription(OrderCompleted, count_effect)) as service:
        good = [completed_event() for _ in range(4)]
        wrong_envelope = orjson.dumps({"type": "OrderCompleted", "data": {"order_id": "x"}})
        unknown_type = orjson.loads(good[0].to_json()) | {"type": "OrderTeleported"}
        unexpected = new_event(
            PaymentFailed(order_id=uuid.uuid4(), reason="card_declined"),
            source="test",
            correlation_id="x",
        )
        bad = [
            b"\xff not json at all",
            b"[1, 2, 3]",
            wrong_envelope,
            orjson.dumps(unknown_type),
            unexpected.to_json(),
        ]
        for good_event, bad_body in zip(good, bad, strict=False):
            await service.publish(bad_body, "order.completed")
            await service.publish(good_event.to_json(), "order.completed")
        await service.publish(bad[-1], "order.completed")

        queue = service.queue("order.completed")
        dead = await get_dead_letters(amqp, queue, len(bad))
        reasons = sorted(m.headers[REASON] for m in dead)
        assert reasons == sorted(
            ["not_json", "not_an_envelope", "not_an_envelope", "unknown_type", "unexpected_type"]
        )
        assert {m.body for m in dead} == set(bad)
        for event in good:
            assert await eventually(lambda e=event: service.effects(e.data.order_id)) == 1


async def test_emitted_event_carries_the_saga_and_its_cause(settings, probe_factory):
    async def create_order(event: Envelope[Any], uow: UnitOfWork) -> None:
        await count_effect(event, uow)
        uow.emit(
            OrderCreated(
                order_id=event.data.order_id,
                customer_id=uuid.uuid4(),
                items=[],
                total_cents=0,
                currency="EUR",
                payment=PaymentDetails(card_token="tok_visa"),
                shipping_address=ShippingAddress(
                    name="A", line1="B", city="C", postal_code="1", country="GB"
                ),
            )
        )

    probe = await probe_factory("order.created")
    async with Service(settings, Subscription(OrderCompleted, create_order)) as service:
        cause = completed_event()
        await service.publish(cause.to_json(), "order.completed", message_id=str(cause.id))
        [message] = await probe.wait_for(1)
        produced = orjson.loads(message.body)
        assert produced["type"] == "OrderCreated"
        assert produced["correlationid"] == cause.correlationid
        assert produced["causationid"] == str(cause.id)
        assert produced["traceparent"].split("-")[1] == cause.traceparent.split("-")[1]


async def test_handler_in_flight_finishes_on_graceful_stop(settings):
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(event: Envelope[Any], uow: UnitOfWork) -> None:
        started.set()
        await release.wait()
        await count_effect(event, uow)

    service = Service(settings, Subscription(OrderCompleted, slow))
    await service.runtime.start()
    event = completed_event()
    await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(service.runtime.consumers.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done(), "stop must wait for the handler in flight"
    release.set()
    await asyncio.wait_for(stopping, 10)
    async with service.runtime.engine.connect() as conn:
        count = (await conn.execute(sa.text("SELECT count(*) FROM effects"))).scalar()
    await service.runtime.stop()
    assert count == 1


async def test_retired_queues_are_deleted_and_dead_letters_kept(settings, broker_url):
    """A service that no longer consumes an event deletes its queue at start
    (bound, it would fill for ever), and its dead-letter queue when empty."""
    older = Service(
        settings,
        Subscription(OrderCreated, count_effect),
        Subscription(OrderCompleted, count_effect),
        Subscription(PaymentFailed, count_effect),
    )
    async with older:
        pass
    # Not robust: a passive declare of a missing queue closes its channel,
    # which a robust connection would reopen.
    amqp = await aio_pika.connect(broker_url)
    channel = await amqp.channel()
    events = await channel.get_exchange(settings.events_exchange)
    await events.publish(aio_pika.Message(b"{}"), routing_key="order.completed")
    dead_payment = dead_letter_queue_name(older.queue("payment.failed"))
    await channel.default_exchange.publish(aio_pika.Message(b"dead"), routing_key=dead_payment)

    async def depth(queue: str) -> int | None:
        probe = await amqp.channel()
        try:
            declared = await probe.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        await probe.close()
        return declared.declaration_result.message_count

    assert await eventually(lambda: depth(older.queue("order.completed"))) == 1

    runtime = ServiceRuntime(
        settings,
        subscriptions=[Subscription(OrderCreated, count_effect)],
        retired=["order.completed", "payment.failed"],
    )
    await runtime.start()
    try:
        assert await depth(older.queue("order.created")) == 0
        assert await depth(older.queue("order.completed")) is None
        assert await depth(dead_letter_queue_name(older.queue("order.completed"))) is None
        assert await depth(older.queue("payment.failed")) is None
        assert await depth(dead_payment) == 1
    finally:
        await runtime.stop()
        await amqp.close()
