"""`shopctl why ORDER`: for an order that is not over, the step it waits on,
since when, where the awaited event is and the command that would move it
on; for one that is over, the path it took and why it ended so.

The saga is read from the services' outboxes (every event a service
committed, published or not) into the one timeline model; then the broker
(the consumer queue, the retry delays, the dead letters), the runtime (is
the part paused, stopped, gone?) and the part itself (/inflight: the
messages its handlers hold, the faults it obeys) are asked about the step."""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiormq
import orjson

from services.common.events import EVENT_MODELS
from services.common.faults import ORDER_START
from services.common.headers import ATTEMPT, ERROR
from shopctl.amqp import broker_connection, browse, queue_states, retry_queues
from shopctl.errors import ShopError, UsageError
from shopctl.observe.deadletters import show
from shopctl.observe.outboxes import OutboxRow, outbox_rows, whole_id
from shopctl.observe.timeline import Timeline, TimelineEvent, TimelineStore
from shopctl.runtimes.base import Runtime

_BROWSED = 500  # messages looked at in each retry delay queue, at most
_ORDER_ID = re.compile(rf"[0-9a-fA-F-]{{{ORDER_START},36}}")  # an id, or its start


@dataclass
class Finding:
    text: str
    command: str | None = None  # what would move the saga on


@dataclass
class Explanation:
    order: str
    timeline: Timeline
    outbox: list[OutboxRow]
    headline: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read

    @property
    def commands(self) -> list[str]:
        return [f.command for f in self.findings if f.command]


def saga_of(rows: list[OutboxRow], correlation_id: str) -> Timeline:
    store = TimelineStore()
    for row in rows:
        store.add_message(row.body, row.routing_key, seen_at=0.0)
    return store.get(correlation_id) or Timeline(correlation_id)


def explain(runtime: Runtime, order: str) -> Explanation:
    if not _ORDER_ID.fullmatch(order):
        raise UsageError(
            f"{order!r} is not an order id", hint="give it whole, or its first 8 characters"
        )
    if len(order) < 36:  # the start of one, as trace and the TUI show it
        order = whole_id(runtime, order)
    rows, problems = outbox_rows(runtime, order)
    timeline = saga_of(rows, order)
    if not len(timeline):
        raise ShopError(
            f"no event of order {order} in any outbox or saga history",
            hint="is it an order id? (shopctl trace shows them as they come)",
        )
    if timeline.outcome is not None:
        explanation = _why_over(order, timeline, rows)
        pending = timeline.waiting_on()  # an orchestrated saga still compensating
        if pending is not None:
            explanation.findings.append(
                Finding(
                    f"still compensating: {pending.describe()}",
                    f"shopctl status   # is {pending.part} up? the command waits on its queue",
                )
            )
    else:
        explanation = _why_waiting(runtime, order, timeline, rows)
    explanation.notes.extend(problems)
    return explanation


def _why_over(order: str, timeline: Timeline, rows: list[OutboxRow]) -> Explanation:
    last = next(e for e in reversed(timeline.events) if e.is_terminal)
    explanation = Explanation(order, timeline, rows, f"order {order} is {timeline.outcome}")
    if last.type == "OrderCancelled":
        chain = _causes(timeline, last)
        reason = last.data.get("reason", "?")
        cause = chain[1] if len(chain) > 1 else None
        if cause is not None:
            detail = _detail(cause)
            explanation.findings.append(
                Finding(
                    f"cancelled ({reason}) because of {cause.type} from {cause.source}"
                    f" at +{timeline.offset(cause):.3f} s{detail}"
                )
            )
        else:
            explanation.findings.append(
                Finding(
                    f"cancelled ({reason}) by the order's own deadline: no step answered in time"
                )
            )
        undone = [e.type for e in timeline if e.is_compensation and e.type != "OrderCancelled"]
        if undone:
            explanation.findings.append(Finding("compensated: " + ", ".join(undone)))
    else:
        took = timeline.offset(last)
        explanation.findings.append(Finding(f"every step done in {took:.3f} s"))
    return explanation


def _causes(timeline: Timeline, event: TimelineEvent) -> list[TimelineEvent]:
    chain = [event]
    while (cause := timeline.cause(chain[-1])) is not None and cause not in chain:
        chain.append(cause)
    return chain


def _detail(event: TimelineEvent) -> str:
    data = event.data
    bits = [f"{k}={data[k]}" for k in ("reason", "skus") if k in data]
    return f" ({', '.join(str(b) for b in bits)})" if bits else ""


def _why_waiting(
    runtime: Runtime, order: str, timeline: Timeline, rows: list[OutboxRow]
) -> Explanation:
    waiting = timeline.waiting_on()
    assert waiting is not None
    age = time.time() - waiting.since
    explanation = Explanation(
        order,
        timeline,
        rows,
        (
            f"order {order}: {waiting.describe()}"
            if waiting.orchestrated
            else f"order {order} waits on {waiting.event} from {waiting.part}, for {age:.1f} s "
            f"(after {waiting.after})"
        ),
    )
    found = explanation.findings
    for row in rows:
        if row.unsent:
            error = f", last error: {row.last_error}" if row.last_error else ""
            found.append(
                Finding(
                    f"{row.event_type} is still in {row.part}'s outbox, not published "
                    f"({row.attempts} attempts{error})",
                    "shopctl doctor   # is the broker up? the relay publishes it when it is",
                )
            )
    routing_key = EVENT_MODELS[waiting.after].routing_key
    queue = f"{waiting.part}.{routing_key}"
    url = runtime.broker_url()
    states = asyncio.run(queue_states(url, [queue, f"{queue}.dlq"]))
    letters = [
        letter
        for letter in asyncio.run(show(url, f"{queue}.dlq", 200))
        if _correlation(letter.body) == order
    ]
    for letter in letters:
        found.append(
            Finding(
                f"{waiting.after} was dead-lettered from {queue}: {letter.reason} after "
                f"{letter.attempts} attempts: {letter.error[:200]}",
                f"shopctl dlq replay {queue}.dlq",
            )
        )
    for delay_queue, attempt, error in asyncio.run(_retrying(url, queue, order)):
        found.append(
            Finding(
                f"{waiting.after} waits in the retry delay {delay_queue} to go back to {queue} "
                f"for attempt {attempt}; it failed: {error[:200]}"
            )
        )
    status = next((s for s in runtime.status() if s.name == waiting.part), None)
    if status is not None and status.state == "paused":
        found.append(Finding(f"{waiting.part} is paused", f"shopctl resume {waiting.part}"))
    elif status is not None and status.state != "running":
        found.append(Finding(f"{waiting.part} is {status.state}", f"shopctl start {waiting.part}"))
    inflight = runtime.inflight(waiting.part) if status and status.state == "running" else None
    if inflight is not None:
        for work in inflight.get("working", []):
            if work.get("correlation_id") != order:
                continue
            fault = f", under fault {work['fault']}" if work.get("fault") else ""
            found.append(
                Finding(
                    f"{waiting.part} holds {work['event_type']} from {work['queue']} unacked, "
                    f"for {work['for_s']:.1f} s (attempt {work['attempt']}){fault}",
                    f"shopctl fault clear {waiting.part}" if fault else None,
                )
            )
        for fault in inflight.get("faults") or []:
            if fault.get("event") != waiting.after or fault.get("order") not in (None, order):
                continue
            holding = order in (fault.get("holding") or [])
            found.append(
                Finding(
                    f"fault {fault['id']} on {waiting.part}: {fault['kind']} {fault['event']}"
                    + (f" until {fault['until']}" if fault.get("until") else "")
                    + (f", {fault['ms']} ms" if fault.get("ms") else "")
                    + f" (used {fault['used']}"
                    + (f" of {fault['times']}" if fault.get("times") else "")
                    + ")"
                    + (", holding this order's message" if holding else ""),
                    f"shopctl fault clear {waiting.part}",
                )
            )
    state = states.get(queue)
    if state is None:
        found.append(Finding(f"{queue} is not declared: {waiting.part} never subscribed"))
    else:
        messages, consumers = state
        text = f"{queue}: {messages} ready, {consumers} consumer{'s' if consumers != 1 else ''}"
        if consumers == 0:
            found.append(Finding(text + ": nobody takes them", f"shopctl start {waiting.part}"))
        else:
            explanation.notes.append(text)
    if not found:
        found.append(
            Finding(
                f"{waiting.after} was published and no trace of it is left at {waiting.part} "
                "(not queued, not held, not dead-lettered): it may be in a retry delay, or "
                "was dropped; the order's deadline cancels it if nothing comes",
                f"shopctl trace --order {order[:8]}",
            )
        )
    return explanation


async def _retrying(url: str, queue: str, order: str) -> list[tuple[str, int, str]]:
    """(retry delay queue, next attempt, last error) of each copy of this
    order's message for ``queue`` that sits out a retry delay now."""
    found = []
    async with broker_connection(url, "shopctl why") as connection:
        for delay_queue in retry_queues(dict(os.environ)):
            channel = await connection.channel()
            try:
                for message in await browse(channel, delay_queue, _BROWSED):
                    if message.routing_key != queue or _correlation(message.body) != order:
                        continue
                    headers = message.headers or {}
                    error = headers.get(ERROR, b"")
                    found.append(
                        (
                            delay_queue,
                            int(str(headers.get(ATTEMPT, 0))),
                            error.decode() if isinstance(error, bytes) else str(error),
                        )
                    )
            except aiormq.exceptions.ChannelNotFoundEntity:
                continue  # that delay was never used
            finally:
                if not channel.is_closed:
                    await channel.close()  # what was browsed goes back
    return found


def _correlation(body: bytes) -> str | None:
    try:
        raw: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return raw.get("correlationid") if isinstance(raw, dict) else None
