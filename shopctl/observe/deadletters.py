"""Dead letters: list, inspect, replay and purge the `<queue>.dlq` queues.

A dead letter carries why it died in its headers (``x-shop-reason``,
``x-shop-error``, ``x-shop-attempts``, ``x-shop-queue``: the queue it came
from). Replaying puts it back on that queue with its headers, less the
dead-letter bookkeeping and with its attempts counted afresh, then acks it
here once the broker confirmed the publish: nothing is lost in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from services.common.broker import make_message
from services.common.headers import (
    ATTEMPT,
    ATTEMPTS,
    DEAD_LETTERED_AT,
    DEATH,
    ERROR,
    QUEUE,
    REASON,
    REPLAYED,
)
from shopctl.amqp import broker_connection, browse
from shopctl.errors import ShopError
from shopctl.stack import PARTS

DLQ_SUFFIX = ".dlq"
ORIGIN = QUEUE


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # the dead-letter queue it sits in
    message_id: str | None
    type: str | None
    origin: str  # the consumer queue it died on
    reason: str
    error: str
    attempts: int
    dead_lettered_at: str
    body: bytes
    headers: dict[str, Any]


def dead_letter_queues() -> list[str]:
    """The dead-letter queue of every consumer queue of the stack."""
    return [f"{queue}{DLQ_SUFFIX}" for part in PARTS for queue in part.queues()]


def _checked(queue: str) -> str:
    if not queue.endswith(DLQ_SUFFIX):
        raise ShopError(f"{queue!r} is not a dead-letter queue (their names end in {DLQ_SUFFIX})")
    return queue


async def _depth(connection: Any, queue: str) -> int | None:
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    finally:
        if not channel.is_closed:
            await channel.close()


async def depths(broker_url: str, queues: list[str] | None = None) -> dict[str, int | None]:
    """Messages waiting in each dead-letter queue (None: not declared yet)."""
    async with broker_connection(broker_url, "shopctl dlq") as connection:
        return {q: await _depth(connection, q) for q in queues or dead_letter_queues()}


def _letter(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})

    def text(name: str) -> str:
        value = headers.get(name, "")
        return value.decode() if isinstance(value, bytes) else str(value)

    try:
        attempts = int(headers.get(ATTEMPTS, 0))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        attempts = 0
    return DeadLetter(
        queue=queue,
        message_id=message.message_id,
        type=message.type,
        origin=text(ORIGIN) or queue.removesuffix(DLQ_SUFFIX),
        reason=text(REASON),
        error=text(ERROR),
        attempts=attempts,
        dead_lettered_at=text(DEAD_LETTERED_AT),
        body=message.body,
        headers=headers,
    )


async def _take(channel: AbstractChannel, queue: str, limit: int) -> list[AbstractIncomingMessage]:
    return await browse(channel, _checked(queue), limit)


async def show(broker_url: str, queue: str, limit: int = 10) -> list[DeadLetter]:
    """The first ``limit`` dead letters, left where they are."""
    async with broker_connection(broker_url, "shopctl dlq") as connection:
        channel = await connection.channel()
        try:
            taken = await _take(channel, queue, limit)
            letters = [_letter(queue, m) for m in taken]
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise ShopError(f"no queue named {queue!r} on the broker") from None
        finally:
            if not channel.is_closed:
                await channel.close()  # unacked: all go back, in order
        return letters


async def replay(
    broker_url: str,
    queue: str,
    limit: int | None = None,
    select: Callable[[DeadLetter], bool] | None = None,
) -> list[DeadLetter]:
    """Put dead letters (those ``select`` picks, when given) back on the
    queues they died on; returns them. The others stay, in their order."""
    async with broker_connection(broker_url, "shopctl dlq") as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        replayed: list[DeadLetter] = []
        try:
            for message in await _take(channel, queue, limit or 10_000):
                letter = _letter(queue, message)
                if select is not None and not select(letter):
                    continue  # unacked: back on the queue when the channel closes
                headers = {
                    k: v
                    for k, v in letter.headers.items()
                    if k not in DEATH and not k.startswith(("x-death", "x-first", "x-last"))
                }
                headers[ATTEMPT] = 1
                headers[REPLAYED] = True
                await channel.default_exchange.publish(
                    make_message(
                        message.body,
                        message.message_id or "",
                        message.type or "",
                        message.correlation_id,
                        headers,
                    ),
                    routing_key=letter.origin,
                    mandatory=True,
                    timeout=10,
                )
                await message.ack()  # only once the broker has it back on its queue
                replayed.append(letter)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise ShopError(f"no queue named {queue!r} on the broker") from None
        except aio_pika.exceptions.DeliveryError:
            raise ShopError(
                f"the queue a dead letter came from is gone; {len(replayed)} replayed before it",
                hint="start the stack (shopctl up) so its queues exist",
            ) from None
        finally:
            if not channel.is_closed:
                await channel.close()
        return replayed


async def purge(
    broker_url: str, queue: str, select: Callable[[DeadLetter], bool] | None = None
) -> int:
    """Drop every dead letter of ``queue`` (or those ``select`` picks); returns how many."""
    async with broker_connection(broker_url, "shopctl dlq") as connection:
        channel = await connection.channel()
        try:
            if select is not None:
                dropped = 0
                for message in await _take(channel, queue, 10_000):
                    if select(_letter(queue, message)):
                        await message.ack()
                        dropped += 1
                return dropped
            target = await channel.get_queue(_checked(queue), ensure=True)
            result = await target.purge()
            return int(result.message_count or 0)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise ShopError(f"no queue named {queue!r} on the broker") from None


def run(coroutine: Any) -> Any:
    """For the CLI: run one of the above."""
    return asyncio.run(coroutine)
