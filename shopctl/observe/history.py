"""History, then live: the events the outboxes still hold (the last N
seconds), then what the tap brings, each event once. `shopctl trace --since`
and the TUI read the stack this way: the tap is opened first, so nothing
falls between the two, and a live event already read from the history is
dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shopctl.observe.outboxes import outbox_events
from shopctl.observe.timeline import Incident, TimelineEvent, parse_event
from shopctl.runtimes.base import Runtime

Item = TimelineEvent | Incident


class HistoryThenLive:
    """Hand each event to ``deliver`` once: from the history, or live."""

    def __init__(self, deliver: Callable[[Item], None]) -> None:
        self.deliver = deliver
        self._from_history: set[str] = set()

    def live(self, item: Item) -> None:
        """The tap's ``on_event``."""
        if isinstance(item, TimelineEvent) and item.id in self._from_history:
            self._from_history.discard(item.id)  # read from an outbox already
            return
        self.deliver(item)

    async def load(self, runtime: Runtime, history_s: float) -> tuple[int, list[str]]:
        """The outboxes' events of the last ``history_s`` seconds, delivered;
        how many, and what could not be read."""
        rows, problems = await asyncio.to_thread(outbox_events, runtime, history_s)
        loaded = 0
        for key, body in rows:
            event = parse_event(body, key, seen_at=0.0)
            if event is not None:
                self._from_history.add(event.id)
                self.deliver(event)
                loaded += 1
        return loaded, problems
