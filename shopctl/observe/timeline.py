"""The one timeline model: an order's saga as its events arrive on the bus.

Built from a tap on ``shop.events`` (see ``Tap``): every event of one saga
(its correlation id, the order id), in the order they happened, each linked
to the event that caused it, with the part that emitted it, when it was
seen, and what the saga waits on now. `shopctl trace`, `shopctl why`, the
TUI and the scenario assertions read this model; none keeps its own."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson

from services.common.headers import ATTEMPT, ERROR, REASON
from services.common.settings import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, ServiceSettings

TERMINAL = frozenset({"OrderCompleted", "OrderCancelled"})
# the facts of a compensation (an orchestrator's commands to compensate,
# COMPENSATION_COMMANDS below, only ask for them)
COMPENSATIONS = frozenset({"StockReleased", "PaymentRefunded", "OrderCancelled"})

# What the saga expects after each event, and which part emits it: the
# choreography of docs/saga.md, as data. The first entry is the happy path.
NEXT_STEPS: dict[str, tuple[tuple[str, str], ...]] = {
    "CartCheckedOut": (("OrderCreated", "order"),),
    "OrderCreated": (("StockReserved", "inventory"), ("StockReservationFailed", "inventory")),
    "StockReserved": (("PaymentSucceeded", "payment"), ("PaymentFailed", "payment")),
    "PaymentSucceeded": (("ShippingCreated", "shipping"),),
    "ShippingCreated": (("OrderCompleted", "order"),),
    "StockReservationFailed": (("OrderCancelled", "order"),),
    "PaymentFailed": (("OrderCancelled", "order"),),
}


@functools.cache
def orchestrated_steps() -> dict[str, tuple[tuple[str, str], ...]]:
    """The same for an orchestrated saga, from the orchestrator's own
    definition (services/order/saga.py): a command waits on its
    participant's reply, a reply on the orchestrator's next command. Made
    when first asked: the definition's module imports SQLAlchemy, which
    every shopctl command would otherwise pay for at start (0.9 s)."""
    from services.order.saga import DEFINITION

    steps: dict[str, tuple[tuple[str, str], ...]] = {
        "CartCheckedOut": (("OrderCreated", "order"),),
    }
    for index, step in enumerate(DEFINITION):
        replies = [step.success, *([step.failure] if step.failure else [])]
        steps[step.command.event_type] = tuple((r.event_type, step.participant) for r in replies)
        following = DEFINITION[index + 1].command if index + 1 < len(DEFINITION) else None
        after = following.event_type if following is not None else "OrderCompleted"
        steps[step.success.event_type] = ((after, "order"),)
        if step.failure is not None:
            steps[step.failure.event_type] = (("OrderCancelled", "order"),)
        steps[step.compensation.event_type] = (("SagaStepCompensated", step.participant),)
    return steps


COMPENSATION_COMMANDS = frozenset({"ReleaseStock", "RefundPayment", "CancelShipment"})

T = TypeVar("T")


@dataclass(frozen=True)
class TimelineEvent:
    """One event as the tap saw it."""

    id: str
    type: str
    source: str  # the part that emitted it
    time: datetime | None  # when it happened, by the emitter's clock
    seen_at: float  # when the tap saw it (time.time())
    correlation_id: str
    causation_id: str | None
    routing_key: str
    data: dict[str, Any]
    deliveries: int = 1  # > 1: the same event id was seen again (a duplicate publish)
    trace_id: str | None = None  # the W3C trace its creation context belongs to
    saga_mode: str | None = None  # "orchestrated": of a saga the orchestrator runs
    deadline: datetime | None = None  # an orchestrator's command: when its timer fires

    @property
    def is_compensation(self) -> bool:
        return self.type in COMPENSATIONS

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL

    @property
    def at(self) -> float:
        """Its time as a timestamp: the emitter's when known, else when seen."""
        return self.time.timestamp() if self.time is not None else self.seen_at


def parse_event(
    body: bytes, routing_key: str, seen_at: float | None = None
) -> TimelineEvent | None:
    """The event in a message body, or None for a body that is not a shop
    envelope (those are the consumers' to dead-letter, not the timeline's)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    fields = (raw.get("id"), raw.get("type"), raw.get("correlationid"))
    if not all(isinstance(value, str) and value for value in fields):
        return None
    when: datetime | None = None
    if isinstance(raw.get("time"), str):
        try:
            when = datetime.fromisoformat(raw["time"])
        except ValueError:
            when = None
    data = raw.get("data")
    traceparent = raw.get("traceparent")
    deadline: datetime | None = None
    if isinstance(raw.get("sagadeadline"), str):
        with contextlib.suppress(ValueError):
            deadline = datetime.fromisoformat(raw["sagadeadline"])
    return TimelineEvent(
        id=raw["id"],
        type=raw["type"],
        source=str(raw.get("source", "?")),
        time=when,
        seen_at=seen_at if seen_at is not None else time.time(),
        correlation_id=raw["correlationid"],
        causation_id=raw.get("causationid") if isinstance(raw.get("causationid"), str) else None,
        routing_key=routing_key,
        data=data if isinstance(data, dict) else {},
        trace_id=traceparent[3:35]
        if isinstance(traceparent, str) and len(traceparent) == 55
        else None,
        saga_mode=raw["sagamode"] if isinstance(raw.get("sagamode"), str) else None,
        deadline=deadline,
    )


@dataclass(frozen=True)
class Incident:
    """A message of the saga that went wrong at a consumer: sent to a retry
    delay after a failed attempt, or dead-lettered."""

    kind: str  # "retry" or "dead_letter"
    queue: str  # the consumer queue, e.g. payment.stock.reserved
    event_id: str
    event_type: str
    correlation_id: str
    attempt: int
    error: str
    seen_at: float
    reason: str | None = None  # dead letters: handler_failed, bad_message, ...

    @property
    def part(self) -> str:
        return self.queue.split(".", 1)[0]

    @property
    def at(self) -> float:
        return self.seen_at


def parse_incident(
    body: bytes, exchange: str, routing_key: str, headers: dict[str, Any], seen_at: float
) -> Incident | None:
    """A retry or a dead letter, from a copy the tap got of it."""
    event = parse_event(body, routing_key, seen_at)
    kind = "dead_letter" if exchange == DEAD_LETTER_EXCHANGE else "retry"
    if event is None and kind == "retry":
        return None
    attempt = headers.get(ATTEMPT, 0)
    return Incident(
        kind=kind,
        queue=routing_key,
        event_id=event.id if event else "",
        event_type=event.type if event else "?",
        correlation_id=event.correlation_id if event else "",
        attempt=int(attempt) if isinstance(attempt, int) else 0,
        error=_text(headers.get(ERROR)),
        seen_at=seen_at,
        reason=_text(headers.get(REASON)) or None,
    )


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Waiting:
    """What a saga that is not over waits for."""

    event: str  # the awaited event type, e.g. "StockReserved"
    part: str  # who would emit it
    after: str  # the event it follows
    since: float  # timestamp of that event
    orchestrated: bool = False
    timer: float | None = None  # orchestrated: when the orchestrator's timer fires

    def age(self, now: float | None = None) -> float:
        return (now if now is not None else time.time()) - self.since

    def describe(self, now: float | None = None, digits: int = 1) -> str:
        """One line: "waiting on StockReserved from inventory, 2.1 s", or for
        an orchestrated saga, the orchestrator's state and its timer."""
        now = now if now is not None else time.time()
        if not self.orchestrated:
            return f"waiting on {self.event} from {self.part}, {self.age(now):.{digits}f} s"
        if self.part == "order":
            text = (
                f"orchestrator: sending {self.event} (after {self.after}, "
                f"{self.age(now):.{digits}f} s)"
            )
        else:
            text = (
                f"orchestrator: waiting on the {self.part} reply to {self.after} "
                f"since {self.age(now):.{digits}f} s"
            )
        if self.timer is not None:
            left = self.timer - now
            text += (
                f"; its timer fires in {left:.{digits}f} s"
                if left >= 0
                else f"; its timer fired {-left:.{digits}f} s ago"
            )
        return text


@dataclass
class Timeline:
    """One saga's events, ordered by when they happened."""

    correlation_id: str
    events: list[TimelineEvent] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)

    def add(self, event: TimelineEvent) -> TimelineEvent:
        """Add an event; the same id again counts as another delivery."""
        for index, known in enumerate(self.events):
            if known.id == event.id:
                again = TimelineEvent(**{**known.__dict__, "deliveries": known.deliveries + 1})
                self.events[index] = again
                return again
        self.events.append(event)
        self.events.sort(key=lambda e: (e.at, e.seen_at))
        return event

    def __iter__(self) -> Iterator[TimelineEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    @property
    def trace_id(self) -> str | None:
        """The saga's trace (its first event's): one checkout is one trace."""
        return next((e.trace_id for e in self.events if e.trace_id), None)

    @property
    def started_at(self) -> float | None:
        return self.events[0].at if self.events else None

    def offset(self, event: TimelineEvent) -> float:
        """Seconds from the saga's first event to ``event``."""
        return event.at - (self.started_at or event.at)

    def cause(self, event: TimelineEvent) -> TimelineEvent | None:
        return next((e for e in self.events if e.id == event.causation_id), None)

    def step_time(self, event: TimelineEvent) -> float | None:
        """Seconds from the event that caused ``event`` to ``event``."""
        cause = self.cause(event)
        return event.at - cause.at if cause is not None else None

    @property
    def orchestrated(self) -> bool:
        return any(e.saga_mode == "orchestrated" for e in self.events)

    @property
    def outcome(self) -> str | None:
        """COMPLETED or CANCELLED (with the reason) once over, else None."""
        for event in reversed(self.events):
            if event.type == "OrderCompleted":
                return "COMPLETED"
            if event.type == "OrderCancelled":
                reason = event.data.get("reason")
                return f"CANCELLED ({reason})" if reason else "CANCELLED"
        return None

    def waiting_on(self) -> Waiting | None:
        """The step the saga waits on: the first expected event of the
        latest step that has not come yet. None when it is over, except for
        an orchestrated saga still compensating after its order ended."""
        if self.outcome is not None:
            return self._compensation_pending() if self.orchestrated else None
        seen = set(self.types)
        orchestrated = self.orchestrated
        table = orchestrated_steps() if orchestrated else NEXT_STEPS
        for event in reversed(self.events):
            steps = table.get(event.type)
            if not steps:
                continue
            if any(expected in seen for expected, _ in steps):
                continue
            expected, part = steps[0]
            timer = event.deadline.timestamp() if event.deadline is not None else None
            return Waiting(expected, part, event.type, event.at, orchestrated, timer)
        return None

    def _compensation_pending(self) -> Waiting | None:
        """The orchestrator's last compensation command, when its
        participant has not answered it (SagaStepCompensated) yet."""
        sent = next((e for e in reversed(self.events) if e.type in COMPENSATION_COMMANDS), None)
        if sent is None:
            return None
        answered = any(
            e.type == "SagaStepCompensated"
            and e.data.get("command") == sent.type
            and e.at >= sent.at
            for e in self.events
        )
        if answered:
            return None
        [(expected, part)] = orchestrated_steps()[sent.type]
        timer = sent.deadline.timestamp() if sent.deadline is not None else None
        return Waiting(expected, part, sent.type, sent.at, True, timer)


class TimelineStore:
    """Every saga the tap has seen, by correlation id, oldest first."""

    def __init__(self, max_sagas: int | None = None) -> None:
        self.timelines: dict[str, Timeline] = {}
        self.max_sagas = max_sagas  # the oldest are forgotten past this many

    def _timeline(self, correlation_id: str) -> Timeline:
        timeline = self.timelines.get(correlation_id)
        if timeline is None:
            timeline = self.timelines[correlation_id] = Timeline(correlation_id)
            if self.max_sagas is not None and len(self.timelines) > self.max_sagas:
                del self.timelines[next(iter(self.timelines))]
        return timeline

    def add(self, event: TimelineEvent) -> TimelineEvent:
        return self._timeline(event.correlation_id).add(event)

    def add_incident(self, incident: Incident) -> Incident:
        if incident.correlation_id:
            self._timeline(incident.correlation_id).incidents.append(incident)
        return incident

    def add_message(
        self, body: bytes, routing_key: str, seen_at: float | None = None
    ) -> TimelineEvent | None:
        event = parse_event(body, routing_key, seen_at)
        return self.add(event) if event is not None else None

    def get(self, correlation_id: str) -> Timeline | None:
        return self.timelines.get(correlation_id)

    def __len__(self) -> int:
        return len(self.timelines)


class Tap:
    """A tap on the events exchange: a queue of its own bound to every
    routing key. It outlives a broker restart (durable, and the connection
    comes back by itself), is deleted when the tap closes, and expires on
    its own a minute after a tap that died without closing, so a closed tap
    leaves nothing behind. Each event goes into ``store`` (and to
    ``on_event``, when given) as it arrives.

        async with Tap(broker_url) as tap:
            ...
            timeline = await tap.wait_for(order_id, lambda t: t.outcome is not None)
    """

    EXPIRES_MS = 60_000

    def __init__(
        self,
        broker_url: str,
        *,
        exchange: str = EVENTS_EXCHANGE,
        store: TimelineStore | None = None,
        on_event: Callable[[TimelineEvent | Incident], None] | None = None,
        incidents: bool = True,
        retry_delays: list[int] | None = None,
        routing_keys: tuple[str, ...] = ("#",),
    ) -> None:
        self.broker_url = broker_url
        self.incidents = incidents
        # the events it takes: every one, or (a flood's bench) only some
        self.routing_keys = routing_keys
        # the stack's retry delays (SHOP_RETRY_* as the stack runs them)
        self.retry_delays = retry_delays
        self.exchange = exchange
        self.store = store if store is not None else TimelineStore()
        self.on_event = on_event
        self._connection: Any = None
        self._queue: Any = None
        self.arrived = asyncio.Event()  # set, and made anew, on every event

    async def __aenter__(self) -> Tap:
        import aio_pika

        self._connection = await aio_pika.connect_robust(
            self.broker_url,
            timeout=10,
            reconnect_interval=1,
            client_properties={"connection_name": "shopctl tap"},
        )
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._queue = await channel.declare_queue(
            f"shopctl.tap.{uuid.uuid4().hex[:12]}",
            durable=True,
            arguments={"x-queue-type": "classic", "x-expires": self.EXPIRES_MS},
        )
        for key in self.routing_keys:
            await self._queue.bind(exchange, routing_key=key)
        if self.incidents:
            await self._bind_incidents(channel)
        await self._queue.consume(self._on_message, no_ack=True)
        return self

    async def _bind_incidents(self, channel: Any) -> None:
        """A copy of every retry (the shared delay exchanges are fanouts) and
        of every dead letter (the dead-letter exchange routes by queue)."""
        import aio_pika

        from shopctl.stack import PARTS

        delays = self.retry_delays
        if delays is None:
            settings = ServiceSettings()
            delays = [settings.retry_delay_ms(a) for a in range(1, settings.max_attempts)]
        for delay in sorted(set(delays)):
            fanout = await channel.declare_exchange(
                f"shop.retry.{delay}", aio_pika.ExchangeType.FANOUT, durable=True
            )
            await self._queue.bind(fanout)
        dead = await channel.declare_exchange(
            DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        for stack_part in PARTS:
            for queue in stack_part.queues():
                await self._queue.bind(dead, routing_key=queue)

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.delete(if_unused=False, if_empty=False), 5)
            await self._connection.close()
            self._connection = None

    async def _on_message(self, message: Any) -> None:
        found: TimelineEvent | Incident | None
        if message.exchange == self.exchange:
            found = self.store.add_message(message.body, message.routing_key or "")
        else:
            incident = parse_incident(
                message.body,
                message.exchange or "",
                message.routing_key or "",
                dict(message.headers or {}),
                time.time(),
            )
            found = self.store.add_incident(incident) if incident is not None else None
        if found is None:
            return
        if self.on_event is not None:
            self.on_event(found)
        arrival, self.arrived = self.arrived, asyncio.Event()
        arrival.set()  # every waiter looks again

    async def wait_for(
        self, correlation_id: str, condition: Callable[[Timeline], bool], timeout: float
    ) -> Timeline:
        """The saga's timeline once ``condition`` holds; TimeoutError with
        what it waits on when the deadline passes first."""

        def holds() -> Timeline | None:
            timeline = self.store.get(correlation_id)
            return timeline if timeline is not None and condition(timeline) else None

        try:
            return await self.wait_any(holds, timeout)
        except TimeoutError:
            timeline = self.store.get(correlation_id)
            waiting = timeline.waiting_on() if timeline is not None else None
            detail = "no event seen"
            if waiting is not None:
                detail = f"waiting on {waiting.event} from {waiting.part}"
            raise TimeoutError(f"saga {correlation_id}: {detail} after {timeout:.0f} s") from None

    async def wait_any(self, find: Callable[[], T | None], timeout: float) -> T:
        """What ``find`` returns once it returns something, asked again as
        each event arrives; TimeoutError when the deadline passes first.
        Any number of waiters at once: each waits on the arrival it last
        looked before (a new one is made per event)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            arrival = self.arrived
            found = find()
            if found is not None:
                return found
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"not seen after {timeout:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrival.wait(), timeout=left)


def render_timeline(timeline: Timeline | None) -> str:
    if timeline is None or not len(timeline):
        return "  (no event seen for this order)"
    lines = []
    for event in timeline:
        step = timeline.step_time(event)
        took = f" (+{step * 1000:.0f} ms)" if step is not None else ""
        twice = f" x{event.deliveries}" if event.deliveries > 1 else ""
        lines.append(
            f"  {timeline.offset(event):7.3f} s  {event.source:<9} {event.type}{took}{twice}"
        )
    waiting = timeline.waiting_on()
    if waiting is not None:
        lines.append(f"  {waiting.describe()}")
    return "\n".join(lines)
