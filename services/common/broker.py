"""One robust RabbitMQ connection per process, a confirmed publisher on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
    DeliveryMode,
)

from .events import CONTENT_TYPE
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """The broker did not confirm a message: unroutable, nacked, timed out or
    the connection is down. The caller keeps the message and tries later."""


class Broker:
    """The process's connection to RabbitMQ and its confirmed publisher.

    Publishes are mandatory and confirmed: an unroutable message, a nack, a
    dropped connection or a missing confirm within ``publish_timeout_s`` all
    raise PublishFailed, never hang (aio-pika issues 78, 106 and 636)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._dead_letters: AbstractExchange | None = None
        self._retry_exchanges: dict[str, AbstractExchange] = {}

    async def connect(self) -> None:
        """Connect and declare the exchanges. A broker that is still starting
        is waited for up to ``broker_startup_timeout_s``; then this raises."""
        deadline = asyncio.get_running_loop().time() + self.settings.broker_startup_timeout_s
        waiting_said = False
        while True:
            try:
                # A broker can accept the TCP connection and then never read
                # it: RabbitMQ 3.x queues the handshake while its file-handle
                # limit is used up. Bounded, so that is said, never a hang.
                self.connection = await aio_pika.connect_robust(
                    self.settings.broker_url,
                    reconnect_interval=self.settings.reconnect_interval_s,
                    client_properties={"connection_name": self.settings.service_name},
                    timeout=self.settings.broker_handshake_timeout_s,
                )
                break
            except (
                ConnectionError,
                OSError,
                TimeoutError,
                aiormq.exceptions.AMQPConnectionError,
            ) as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                if isinstance(exc, TimeoutError):
                    log.warning(
                        "the broker accepted the connection but did not complete the AMQP "
                        "handshake within %.0f s (is its file-descriptor limit used up? "
                        "see shopctl doctor); retrying",
                        self.settings.broker_handshake_timeout_s,
                    )
                elif not waiting_said:
                    log.info("broker not reachable yet (%s); waiting for it", exc)
                    waiting_said = True
                # Short: a broker that is booting beside us answers any moment.
                await asyncio.sleep(min(self.settings.reconnect_interval_s, 0.25))
        self._channel = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._events = await self._channel.declare_exchange(
            self.settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._dead_letters = await self._channel.declare_exchange(
            self.settings.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )

    async def channel(self, prefetch: int) -> AbstractChannel:
        """A new channel on the robust connection with its own prefetch."""
        assert self.connection is not None, "connect() first"
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    @property
    def is_connected(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and bool(self.connection.connected.is_set())
        )

    async def publish_event(
        self,
        body: bytes,
        routing_key: str,
        *,
        message_id: str,
        event_type: str,
        correlation_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish one event body to the events exchange and wait for its confirm."""
        assert self._events is not None, "connect() first"
        await self._publish(
            self._events,
            routing_key,
            make_message(body, message_id, event_type, correlation_id, headers),
        )

    async def publish_dead_letter(self, queue: str, message: aio_pika.Message) -> None:
        assert self._dead_letters is not None, "connect() first"
        await self._publish(self._dead_letters, queue, message)

    async def publish_retry(self, exchange: str, queue: str, message: aio_pika.Message) -> None:
        """Publish to a retry delay's fanout exchange, keyed by the queue the
        message returns to when its delay is over."""
        assert self._channel is not None, "connect() first"
        target = self._retry_exchanges.get(exchange)
        if target is None:
            target = await self._channel.get_exchange(exchange, ensure=False)
            self._retry_exchanges[exchange] = target
        await self._publish(target, queue, message)

    async def publish_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        """Publish straight to a queue (default exchange): retries and replays."""
        assert self._channel is not None, "connect() first"
        await self._publish(self._channel.default_exchange, queue, message)

    async def _publish(
        self, exchange: AbstractExchange, routing_key: str, message: aio_pika.Message
    ) -> None:
        timeout = self.settings.publish_timeout_s
        try:
            # asyncio.timeout, not wait_for: no task made for every publish
            async with asyncio.timeout(timeout):
                await exchange.publish(message, routing_key, mandatory=True, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            raise PublishFailed(f"no confirm for {routing_key!r} within {timeout}s") from None
        except Exception as exc:
            raise PublishFailed(f"{routing_key!r}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None


def make_message(
    body: bytes,
    message_id: str,
    event_type: str,
    correlation_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type=CONTENT_TYPE,
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=event_type,
        correlation_id=correlation_id,
        headers=dict(headers or {}),
    )
