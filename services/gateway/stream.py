"""The live saga stream: one broker subscription to every event, fanned out
in-process to the SSE clients watching each order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage

from services.common.broker import Broker

log = logging.getLogger(__name__)

TERMINAL_EVENTS = {"OrderCompleted", "OrderCancelled"}


RECENT_SAGAS = 1000  # sagas whose recent events are kept for late watchers (a few MB)
EVENTS_A_SAGA = 32


class SagaBroadcaster:
    """Subscribes once to ``shop.events`` (an exclusive, auto-deleted queue of
    this process) and hands each event to the watchers of its correlation id.
    It keeps the last events of recent sagas, so a watcher that comes after
    the first steps (a page opened just after the checkout) sees them too."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._recent: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()

    def recent(self, saga: str) -> list[dict[str, Any]]:
        """The saga's events this process has seen lately, oldest first."""
        return list(self._recent.get(saga, ()))

    async def start(self) -> None:
        channel = await self.broker.channel(prefetch=500)
        queue = await channel.declare_queue(
            f"gateway.stream.{uuid.uuid4().hex[:12]}", exclusive=True, auto_delete=True
        )
        await queue.bind(self.broker.settings.events_exchange, routing_key="#")
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = orjson.loads(message.body)
            saga = str(event["correlationid"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # not ours to judge: consumers dead-letter bad messages
        self.deliver(saga, event)

    def deliver(self, saga: str, event: dict[str, Any]) -> None:
        """Keep one event of ``saga`` and hand it to the saga's watchers."""
        kept = self._recent.get(saga)
        if kept is None:
            kept = self._recent[saga] = deque(maxlen=EVENTS_A_SAGA)
            if len(self._recent) > RECENT_SAGAS:
                self._recent.popitem(last=False)
        kept.append(event)
        for watcher in self._watchers.get(saga, ()):
            with contextlib.suppress(asyncio.QueueFull):
                watcher.put_nowait(event)

    @contextlib.asynccontextmanager
    async def watch(self, saga: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        watcher: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._watchers.setdefault(saga, set()).add(watcher)
        try:
            yield watcher
        finally:
            watchers = self._watchers.get(saga)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[saga]
