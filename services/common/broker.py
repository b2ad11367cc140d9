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

    async def connect(self) -> None:
        """Connect and declare the exchanges. A broker that is still starting
        is waited for up to ``broker_startup_timeout_s``; then this raises."""
        deadline = asyncio.get_running_loop().time() + self.settings.broker_startup_timeout_s
        while True:
            try:
                self.connection = await aio_pika.connect_robust(
                    self.settings.broker_url,
                    reconnect_interval=self.settings.reconnect_interval_s,
                    client_properties={"connection_name": self.settings.service_name},
                )
                break
            except (ConnectionError, OSError, aiormq.exceptions.AMQPConnectionError) as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                log.warning("broker not reachable yet (%s); retrying", exc)
                await asyncio.sleep(self.settings.reconnect_interval_s)
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

    async def publish_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        """Publish straight to a queue (default exchange): retries and replays."""
        assert self._channel is not None, "connect() first"
        await self._publish(self._channel.default_exchange, queue, message)

    async def _publish(
        self, exchange: AbstractExchange, routing_key: str, message: aio_pika.Message
    ) -> None:
        timeout = self.settings.publish_timeout_s
        try:
            await asyncio.wait_for(
                exchange.publish(message, routing_key, mandatory=True, timeout=timeout),
                timeout=timeout,
            )
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
