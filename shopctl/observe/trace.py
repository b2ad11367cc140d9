"""How the saga tracer shows things: one line for each event or incident,
filters, and the bus's recent history from the outboxes. `shopctl trace`
prints these lines; the TUI's event stream uses the same."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from shopctl.errors import UsageError
from shopctl.observe.timeline import Incident, TimelineEvent, TimelineStore

FAILURES = frozenset({"PaymentFailed", "StockReservationFailed", "OrderCancelled"})
_KEY_FIELDS = (
    "reason",
    "total_cents",
    "amount_cents",
    "skus",
    "carrier",
    "tracking_number",
    "sku",
    "initial_stock",
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")


def parse_duration(text: str) -> float:
    """'90s', '5m', '1h', '250ms' or a plain number of seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"{text!r} is not a duration; write 30s, 5m or 1h")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


@dataclass(frozen=True)
class Filters:
    order: str | None = None  # a prefix of the order (correlation) id
    type: str | None = None  # an event type, or retry / dead_letter
    part: str | None = None  # who emitted the event, or whose consumer had the incident

    def accept(self, item: TimelineEvent | Incident) -> bool:
        if self.order and not item.correlation_id.startswith(self.order):
            return False
        if isinstance(item, Incident):
            kind_ok = self.type in (None, item.kind, item.event_type)
            return kind_ok and self.part in (None, item.part)
        return self.type in (None, item.type) and self.part in (None, item.source)


def key_data(event: TimelineEvent) -> str:
    """The few fields of an event's data worth a glance."""
    shown = []
    for key in _KEY_FIELDS:
        if key in event.data:
            value = event.data[key]
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            shown.append(f"{key}={value}")
    items = event.data.get("items")
    if isinstance(items, list) and items:
        shown.append(
            "items="
            + ",".join(f"{i.get('sku')}x{i.get('quantity')}" for i in items if isinstance(i, dict))
        )
    return " ".join(shown)


def style_of(item: TimelineEvent | Incident) -> str:
    if isinstance(item, Incident):
        return "bold red" if item.kind == "dead_letter" else "yellow"
    if item.type == "OrderCompleted":
        return "bold green"
    if item.type in FAILURES:
        return "red"
    if item.is_compensation:
        return "yellow"
    return ""


def trace_line(store: TimelineStore, item: TimelineEvent | Incident) -> Text:
    """``12:00:01.234  3f2a9c1e  +0.052 s  inventory  StockReserved  items=...``"""
    timeline = store.get(item.correlation_id)
    started = timeline.started_at if timeline is not None else None
    offset = item.at - started if started is not None else 0.0
    clock = datetime.fromtimestamp(item.at).strftime("%H:%M:%S.%f")[:-3]
    line = Text(f"{clock}  ", style="dim")
    line.append(f"{item.correlation_id[:8]}  ", style="cyan")
    line.append(f"+{offset:7.3f} s  ", style="dim")
    style = style_of(item)
    if isinstance(item, Incident):
        part = item.part
        if item.kind == "retry":
            what = f"retry {item.event_type} (attempt {item.attempt})"
        else:
            what = f"DEAD LETTER {item.event_type} ({item.reason or '?'})"
        line.append(f"{part:<9}  ", style="bold")
        line.append(f"{what:<32}", style=style)
        line.append(f" {item.queue}: {item.error[:120]}", style=style or "dim")
        return line
    line.append(f"{item.source:<9}  ", style="bold")
    line.append(f"{item.type:<32}", style=style)
    if item.deliveries > 1:
        line.append(f" x{item.deliveries} (published again)", style="magenta")
    data = key_data(item)
    if data:
        line.append(f" {data}", style="dim")
    return line
