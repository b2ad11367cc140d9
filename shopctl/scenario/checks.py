"""What the JSON Schema cannot see in a scenario file: every name checked
against the stack (event types against the event catalog, outcomes, the
statuses of payments and shipments, dead-letter queues and reasons, routing
keys, which part consumes what) and every ${variable} against what is set
before it. Each problem is (path in the document, message), the message
with a suggestion when a known name is close."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from typing import Any

from services.common.events import EVENT_MODELS
from services.common.headers import DEAD_LETTER_REASONS
from shopctl.stack import SERVICES

VARIABLE = re.compile(r"\$\{(\w+)\}")  # what the runner fills, and what is checked here
Path = list[str | int]
Problem = tuple[Path, str]

BUILTIN_VARIABLES = ("run", "sku")
CANCEL_REASONS = ("out_of_stock", "payment_declined", "timeout")
OUTCOMES = ("COMPLETED", "CANCELLED", *(f"CANCELLED ({r})" for r in CANCEL_REASONS))
RECORD_STATUSES = {
    "payments": ("CAPTURED", "DECLINED", "REFUNDED"),
    "shipments": ("CREATED", "CANCELLED"),
}
ROUTING_KEYS = tuple(sorted(model.routing_key for model in EVENT_MODELS.values()))
_TYPE_OF_KEY = {model.routing_key: name for name, model in EVENT_MODELS.items()}
# what each part's relay publishes (publish_twice acts there)
PRODUCED = {
    "cart": ("CartCheckedOut",),
    "catalog": ("ProductCreated",),
    "order": ("OrderCreated", "OrderCompleted", "OrderCancelled"),
    "inventory": ("StockReserved", "StockReservationFailed", "StockReleased"),
    "payment": ("PaymentSucceeded", "PaymentFailed", "PaymentRefunded"),
    "shipping": ("ShippingCreated",),
}
CONSUMED = {
    service.name: tuple(_TYPE_OF_KEY[key] for key in service.consumes if key in _TYPE_OF_KEY)
    for service in SERVICES
}
DEAD_LETTER_QUEUES = tuple(
    f"{service.name}.{key}.dlq" for service in SERVICES for key in service.consumes
)


def count_bounds(count: int | dict[str, int]) -> tuple[int, int | None]:
    """(at least, at most) of a count: a number is exact."""
    if isinstance(count, int):
        return count, count
    low = count.get("exactly", count.get("at_least", 0))
    return low, count.get("exactly", count.get("at_most"))


def suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _named(name: Any, known: Iterable[str], what: str) -> str | None:
    """Why ``name`` is not one of ``known`` (None when it is, or is a ${variable})."""
    known = tuple(known)
    if not isinstance(name, str) or name in known or VARIABLE.search(name):
        return None
    hint = suggest(name, known) or f" (known: {', '.join(known)})"
    return f"no {what} {name!r}{hint}"


def event_type(name: Any) -> str | None:
    return _named(name, EVENT_MODELS, "event type")


def outcome(name: Any) -> str | None:
    return _named(name, OUTCOMES, "outcome")


def problems(document: dict[str, Any]) -> list[Problem]:
    """Every problem of a document the schema accepted, in file order."""
    found: list[Problem] = []
    defined = {*BUILTIN_VARIABLES, *(document.get("variables") or {})}
    for section in ("steady_state", "method"):
        for index, step in enumerate(document.get(section) or []):
            found.extend(_step(step, [section, index], defined))
    for index, expectation in enumerate(document.get("expect") or []):
        kind, body = next(iter(expectation.items()))
        where: Path = ["expect", index, kind]
        if kind == "order":
            found.extend(_order_expectation(body, where))
        elif kind == "orders":
            for name in body.get("outcomes", {}):
                if (why := outcome(name)) is not None:
                    found.append(([*where, "outcomes", name], why))
        elif kind == "http":
            defined.update(body.get("capture") or {})
        else:
            found.extend(_expectation(kind, body, where))
        found.extend(_variables(body, where, defined))
    for index, step in enumerate(document.get("rollbacks") or []):
        # rollbacks run after a failure too, when a capture may never have happened
        found.extend(_step(step, ["rollbacks", index], set(defined)))
    return found


def _step(step: dict[str, Any], where: Path, defined: set[str]) -> Iterator[Problem]:
    action = next((k for k in step if k != "name"), None)
    if action is None:
        return  # a step with no action: the schema's to say
    body = step[action]
    here: Path = [*where, action]
    if action == "parallel":
        copy = {*defined, "i"}  # a copy's captures are its own
        for index, inner in enumerate(body["steps"]):
            yield from _step(inner, [*here, "steps", index], copy)
        return
    if action == "concurrent":
        after: set[str] = set()
        for name, steps in body.items():
            branch = set(defined)  # a branch sees its own captures, the block's end all
            for index, inner in enumerate(steps):
                yield from _step(inner, [*here, name, index], branch)
            after |= branch
        defined |= after
        return
    yield from _variables(body, here, defined)
    if action == "fault":
        yield from _fault(body, here)
    elif action == "await":
        yield from _order_expectation(body, here)
    elif action == "await_event":
        if (why := event_type(body["type"])) is not None:
            yield [*here, "type"], why
        defined.update(body.get("capture") or {})
    elif action == "http":
        defined.update(body.get("capture") or {})
    elif action == "publish":
        key = body["routing_key"]
        if key not in ROUTING_KEYS and not VARIABLE.search(key):
            yield (
                [*here, "routing_key"],
                f"no queue takes routing key {key!r} (a message to it is lost)"
                + suggest(key, ROUTING_KEYS),
            )
    elif action in ("dead_letter", "sequence"):
        yield from _expectation(action, body, here)
    elif action == "dlq":
        for verb in ("await", "replay", "purge"):
            if verb in body and (why := _queue(body[verb])) is not None:
                yield [*here, verb], why


def _queue(name: str) -> str | None:
    return _named(name, DEAD_LETTER_QUEUES, "dead-letter queue")


def _fault(fault: dict[str, Any], where: Path) -> Iterator[Problem]:
    for key in ("event", "until"):
        if key in fault and (why := event_type(fault[key])) is not None:
            yield [*where, key], why
    part, event, kind = fault["part"], fault["event"], fault["kind"]
    if event not in EVENT_MODELS:
        return
    if kind == "publish_twice":
        if event not in PRODUCED.get(part, ()):
            made = ", ".join(PRODUCED.get(part, ())) or "nothing"
            yield [*where, "event"], f"{part} does not publish {event} (it publishes {made})"
    elif event not in CONSUMED.get(part, ()):
        takes = ", ".join(CONSUMED.get(part, ())) or "no event"
        takers = [p for p, events in CONSUMED.items() if event in events]
        hint = f"; {event} is consumed by {', '.join(takers)}" if takers else ""
        yield [*where, "event"], f"{part} does not consume {event} (it takes {takes}){hint}"
    if "ms" in fault and kind != "delay":
        yield [*where, "ms"], f"ms is for a delay, not a {kind}"
    if "until" in fault and kind != "hold":
        yield [*where, "until"], f"until is for a hold, not a {kind}"
    if "until_order" in fault and kind != "hold":
        yield [*where, "until_order"], f"until_order is for a hold, not a {kind}"
    until = fault.get("until")
    if kind == "hold" and until in EVENT_MODELS and until not in CONSUMED.get(part, ()):
        yield (
            [*where, "until"],
            f"{part} never handles {until}, so it would not let the message go "
            f"(a hold waits on an event the same part handles: "
            f"{', '.join(CONSUMED.get(part, ())) or 'none'})",
        )
    if "at" in fault and kind != "crash":
        yield [*where, "at"], f"at is for a crash, not a {kind}"


def _order_expectation(body: dict[str, Any], where: Path) -> Iterator[Problem]:
    for index, item in enumerate(body.get("events", [])):
        name = item["type"] if isinstance(item, dict) else item
        if (why := event_type(name)) is not None:
            yield [*where, "events", index], why
    for index, name in enumerate(body.get("never", [])):
        if (why := event_type(name)) is not None:
            yield [*where, "never", index], why
    for name, count in (body.get("counts") or {}).items():
        if (why := event_type(name)) is not None:
            yield [*where, "counts", name], why
        if isinstance(count, dict):
            low, high = count_bounds(count)
            if "exactly" in count and len(count) > 1:
                yield [*where, "counts", name], "exactly stands alone (no at_least/at_most)"
            elif high is not None and high < low:
                yield [*where, "counts", name], f"at_most {high} is below at_least {low}"
    if "outcome" in body and (why := outcome(body["outcome"])) is not None:
        yield [*where, "outcome"], why
    for kind, statuses in RECORD_STATUSES.items():
        for status in body.get(kind) or {}:
            if (why := _named(status, statuses, f"{kind[:-1]} status")) is not None:
                yield [*where, kind, status], why


def _expectation(kind: str, body: dict[str, Any], where: Path) -> Iterator[Problem]:
    if kind == "dead_letter":
        if (why := _queue(body["queue"])) is not None:
            yield [*where, "queue"], why
        if "event" in body and (why := event_type(body["event"])) is not None:
            yield [*where, "event"], why
        reason = body.get("reason")
        if reason is not None and (why := _named(reason, DEAD_LETTER_REASONS, "reason")):
            yield [*where, "reason"], why
    elif kind == "sequence":
        for index, item in enumerate(body["events"]):
            if (why := event_type(item["event"])) is not None:
                yield [*where, "events", index, "event"], why


def _variables(value: Any, where: Path, defined: set[str]) -> Iterator[Problem]:
    """Every ${name} in ``value`` that nothing set before."""
    if isinstance(value, str):
        for match in VARIABLE.finditer(value):
            name = match.group(1)
            if name not in defined:
                hint = suggest(name, defined)
                yield (
                    where,
                    f"${{{name}}} is not set before this point (set it in variables:, "
                    f"or capture: it in an earlier step){hint}",
                )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _variables(item, [*where, index], defined)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "capture":
                continue  # names set here, not read
            yield from _variables(item, [*where, key], defined)
