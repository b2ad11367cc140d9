"""An order's spans, read back from the OTLP-JSON lines files the parts
write in the sandbox (services/common/spanfile.py), drawn as a waterfall:
one line a span, indented under its parent, a bar where it ran in the trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.text import Text

STATUS_ERROR = 2  # OTLP's STATUS_CODE_ERROR


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    part: str
    start_ns: int
    end_ns: int
    error: str | None
    attributes: dict[str, Any]
    links: list[tuple[str, str]]  # (trace id, span id)
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def _attributes(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value", {})) for item in items}


def parse_request(request: dict[str, Any]) -> Iterator[Span]:
    """The spans of one OTLP-JSON ``ExportTraceServiceRequest``."""
    for resource_spans in request.get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        part = str(resource.get("service.name", "?"))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                status = raw.get("status", {})
                error = None
                if status.get("code") == STATUS_ERROR:
                    error = status.get("message") or "error"
                yield Span(
                    trace_id=raw["traceId"],
                    span_id=raw["spanId"],
                    parent_id=raw.get("parentSpanId", ""),
                    name=raw.get("name", ""),
                    part=part,
                    start_ns=int(raw.get("startTimeUnixNano", 0)),
                    end_ns=int(raw.get("endTimeUnixNano", 0)),
                    error=error,
                    attributes=_attributes(raw.get("attributes", [])),
                    links=[(link["traceId"], link["spanId"]) for link in raw.get("links", [])],
                )


def read_spans(directory: Path) -> list[Span]:
    """Every span in the directory's ``*.jsonl`` files (a line cut short by
    a part still writing is skipped)."""
    spans: list[Span] = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open("rb") as lines:
            for line in lines:
                with contextlib.suppress(orjson.JSONDecodeError, KeyError):
                    spans.extend(parse_request(orjson.loads(line)))
    return spans


def order_of(span: Span) -> str | None:
    conversation = span.attributes.get("messaging.message.conversation_id")
    return str(conversation) if conversation else None


def traces_of_order(spans: list[Span], order: str) -> list[str]:
    """The trace ids whose messages belong to the order (its id or a prefix)."""
    found = {s.trace_id for s in spans if (order_of(s) or "").startswith(order)}
    return sorted(found)


def tree(spans: list[Span]) -> list[Span]:
    """The roots of the spans, each with its children in start order; a span
    whose parent is not among them is a root."""
    by_id = {s.span_id: s for s in spans}
    roots = []
    for span in sorted(spans, key=lambda s: s.start_ns):
        parent = by_id.get(span.parent_id)
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
    return roots


def label(span: Span) -> str:
    """What a person reads for a span: a statement's start for SQL, the
    address for an HTTP call, else its name."""
    statement = span.attributes.get("db.query.text") or span.attributes.get("db.statement")
    if isinstance(statement, str):
        words = " ".join(statement.split())
        return "SQL ping" if words == ";" else f"SQL {words}"
    url = span.attributes.get("url.full") or span.attributes.get("http.url")
    if isinstance(url, str) and span.name in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        parts = urlsplit(url)
        where = f":{parts.port}{parts.path}" if parts.port else parts.path
        return f"{span.name} {where}"
    return span.name


def _walk(roots: list[Span], depth: int = 0) -> Iterator[tuple[int, Span]]:
    for span in roots:
        yield depth, span
        yield from _walk(span.children, depth + 1)


def render_waterfall(spans: list[Span], width: int = 40) -> list[Text]:
    """One line a span: where it started after the trace began, its part, its
    name indented under its parent, its duration and a bar; errors in red."""
    if not spans:
        return []
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    total = max(end - start, 1)
    names = [(depth, span) for depth, span in _walk(tree(spans))]
    name_width = min(60, max(2 * depth + len(label(span)) for depth, span in names))
    lines = []
    for depth, span in names:
        left = int((span.start_ns - start) / total * width)
        length = max(1, round((span.end_ns - span.start_ns) / total * width))
        bar = " " * left + "█" * min(length, width - left if left < width else 1)
        style = "red" if span.error else ("cyan" if span.name.endswith(" process") else "")
        line = Text()
        line.append(f"+{(span.start_ns - start) / 1e6:8.1f} ms  ", style="dim")
        line.append(f"{span.part:<10} ", style="bold")
        text = f"{'  ' * depth}{label(span)}"
        if len(text) > name_width:
            text = text[: name_width - 1] + "…"
        line.append(text.ljust(name_width), style=style)
        line.append(f" {span.duration_ms:8.1f} ms ")
        line.append(bar.ljust(width), style="red" if span.error else "green")
        if span.error:
            line.append(f"  {span.error}", style="red")
        lines.append(line)
    return lines
