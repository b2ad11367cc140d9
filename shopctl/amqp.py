"""shopctl's own connections to the stack's broker (taps, faults, dead
letters, injected events): one place that turns an unreachable broker into
one sentence."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from services.common.settings import EVENTS_EXCHANGE
from shopctl.errors import ShopError

if TYPE_CHECKING:
    from services.common.settings import ServiceSettings


@asynccontextmanager
async def broker_connection(
    broker_url: str, name: str = "shopctl"
) -> AsyncIterator[AbstractConnection]:
    """A connection for the block; ShopError when the broker does not answer."""
    try:
        connection = await aio_pika.connect(
            broker_url, timeout=10, client_properties={"connection_name": name}
        )
    except (OSError, TimeoutError, aiormq.exceptions.AMQPConnectionError) as exc:
        raise ShopError(
            f"RabbitMQ cannot be reached at {broker_url.split('@')[-1]} ({type(exc).__name__})",
            hint="is the stack up? shopctl status",
        ) from None
    try:
        yield connection
    finally:
        await connection.close()


async def queue_states(broker_url: str, queues: list[str]) -> dict[str, tuple[int, int] | None]:
    """(messages ready, consumers) of each queue; None for one not declared."""
    import aiormq.exceptions

    found: dict[str, tuple[int, int] | None] = {}
    async with broker_connection(broker_url, "shopctl queues") as connection:
        for queue in queues:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
                result = declared.declaration_result
                found[queue] = (int(result.message_count or 0), int(result.consumer_count or 0))
            except aiormq.exceptions.ChannelNotFoundEntity:
                found[queue] = None
            finally:
                if not channel.is_closed:
                    await channel.close()
    return found


async def browse(channel: AbstractChannel, queue: str, limit: int) -> list[AbstractIncomingMessage]:
    """Up to ``limit`` messages of ``queue``, taken unacked: closing the
    channel puts them all back, in order."""
    source = await channel.get_queue(queue, ensure=True)
    taken = []
    for _ in range(limit):
        message = await source.get(no_ack=False, fail=False, timeout=5)
        if message is None:
            break
        taken.append(message)
    return taken


def _stack_settings(env: dict[str, str]) -> ServiceSettings:
    """The messaging settings a stack's services read from this environment."""
    from services.common.settings import ServiceSettings

    given = {k[5:].lower(): v for k, v in env.items() if k.startswith("SHOP_")}
    return ServiceSettings.model_validate(given)


def retry_queues(env: dict[str, str]) -> list[str]:
    """The retry delays' queues a stack with this environment declares."""
    from services.common.consumer import retry_delays_ms, retry_queue_name

    return [retry_queue_name(delay) for delay in retry_delays_ms(_stack_settings(env))]


def stack_topology(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """(queues, exchanges) a stack with this environment declares on its
    broker: every consumer queue and its dead letters, the live stream's, the
    retry delays' (as its SHOP_* settings make them) and the exchanges."""
    from services.common.consumer import dead_letter_queue_name
    from services.common.faults import CONTROL_EXCHANGE
    from services.gateway.stream import STREAM_QUEUE
    from shopctl.stack import PARTS

    settings = _stack_settings(env)
    retries = retry_queues(env)
    consumed = [queue for part in PARTS for queue in part.queues()]
    queues = [*consumed, *map(dead_letter_queue_name, consumed), STREAM_QUEUE, *retries]
    exchanges = [
        settings.events_exchange,
        settings.dead_letter_exchange,
        CONTROL_EXCHANGE,
        *retries,
    ]
    return queues, exchanges


async def drop_topology(broker_url: str, queues: list[str], exchanges: list[str]) -> int:
    """Delete these queues (with what they hold) and exchanges; returns how
    many queues there were. Meant for a stack that is down (no consumers)."""
    import aiormq.exceptions

    dropped = 0
    async with broker_connection(broker_url, "shopctl down") as connection:
        channel = await connection.channel()
        for queue in queues:
            try:
                await channel.declare_queue(queue, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                channel = await connection.channel()  # the failed check closed it
                continue
            await channel.queue_delete(queue)
            dropped += 1
        for exchange in exchanges:
            await channel.exchange_delete(exchange)
        await channel.close()
    return dropped


def quiet_broker_clients() -> None:
    """A broker restart or a closed tap is the caller's business to say,
    not aio-pika's tracebacks on the terminal."""
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


async def publish_event(
    broker_url: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None = None,
    content_type: str | None = None,
    client: str = "shopctl",
) -> None:
    """Publish one body on the events exchange, as any producer could
    (`shopctl inject`, a scenario's raw message), confirmed; ShopError when
    nothing is bound to its routing key (no consumer would ever see it)."""
    async with broker_connection(broker_url, client) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        try:
            await exchange.publish(
                aio_pika.Message(
                    body,
                    content_type=content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message_id or str(uuid.uuid4()),
                ),
                routing_key=routing_key,
                mandatory=True,
                timeout=10,
            )
        except aio_pika.exceptions.DeliveryError:
            raise ShopError(
                f"nothing is bound to {routing_key!r}: no part consumes it right now",
                hint="is the stack up? shopctl status",
            ) from None
