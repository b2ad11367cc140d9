"""shopctl's own connections to the stack's broker (taps, faults, dead
letters, injected events): one place that turns an unreachable broker into
one sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection

from .errors import ShopError


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
