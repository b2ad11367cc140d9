"""OpenTelemetry traces for every part: one checkout is one trace, from the
gateway's request through every handler, retry and compensation.

- HTTP: the FastAPI (server) and aiohttp (client) instrumentations; the
  client sends ``traceparent`` and the next part's server span continues it.
- SQL: psycopg's instrumentation (a span a statement, on the async engine's
  connections too).
- Events: the outbox breaks the usual publish instrumentation (the relay
  publishes later, in another task), so the trace context travels with the
  event. ``uow.emit`` writes the current span's context into the envelope's
  ``traceparent`` (the creation context, stored with the outbox row); the
  relay's ``<routing key> publish`` span is its child and sends it as the
  ``traceparent``/``tracestate`` AMQP headers; the consumer's
  ``<routing key> process`` span is a child of it and also linked to it
  (the messaging semantic conventions). The header and the envelope carry
  the same context: one source of truth, read from the header first.

Export: OTLP over HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its traces
variant) is set, with the standard ``OTEL_*`` variables; else, when
``SHOP_SPANS_DIR`` is set (the sandbox sets it), OTLP-JSON lines in one file
per process there, which ``shopctl trace --spans`` reads; else nothing is
recorded. ``OTEL_SDK_DISABLED=true`` turns it all off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

log = logging.getLogger(__name__)
tracer = trace.get_tracer("shop")

MESSAGING_SYSTEM = "rabbitmq"
_TRACEPARENT_KEY = b'"traceparent":"'
_configured = False


def enabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def _otlp_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def setup_tracing(part: str, instance: str, spans_dir: str | None) -> str:
    """Install the process's tracer provider once; returns where spans go
    ("otlp <endpoint>", "file <path>", or "off: <why>")."""
    global _configured
    if _configured:
        return "already configured"
    if not enabled():
        return "off: OTEL_SDK_DISABLED=true"
    endpoint = _otlp_endpoint()
    if not endpoint and not spans_dir:
        return "off: no OTEL_EXPORTER_OTLP_ENDPOINT and no SHOP_SPANS_DIR"
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or part}
    if instance:
        attributes["service.instance.id"] = instance
    attributes["service.namespace"] = "shop"
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter: SpanExporter
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
        where = f"otlp {endpoint}"
    else:
        path = Path(spans_dir or ".") / f"{part}.{instance or os.getpid()}.jsonl"
        from .spanfile import JsonLinesSpanExporter

        exporter = JsonLinesSpanExporter(path)
        where = f"file {path}"
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _configured = True
    return where


def _disabled_instrumentations() -> set[str]:
    """OpenTelemetry's own switch: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=psycopg,..."""
    names = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return {name.strip() for name in names.split(",") if name.strip()}


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    disabled = _disabled_instrumentations()
    if "aiohttp-client" not in disabled:
        AioHttpClientInstrumentor().instrument()
    if "psycopg" not in disabled:
        # enable_commenter off: a comment in each statement would defeat the
        # prepared statements (docs/performance-journal.md)
        PsycopgInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)


def instrument_app(app: Any) -> None:
    """The FastAPI instrumentation on one app (server spans, ``traceparent`` in)."""
    if not _configured or "fastapi" in _disabled_instrumentations():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="/healthz,/readyz,/metrics,/control/.*",
        exclude_spans=["receive", "send"],
    )


def flush() -> None:
    """Export what is buffered (a part stopping)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if callable(force_flush):
        force_flush(5_000)


def statement(sql: str, database: str) -> AbstractContextManager[Any]:
    """A span for one round trip of the messaging core's driver
    (services/common/db.py): psycopg's instrumentation sees only cursors
    made by the connection, and the driver makes its own (the BEGIN, the
    inbox row and the COMMIT ride with a statement). Nothing when tracing
    is off, or outside a span."""
    if not _configured or not trace.get_current_span().is_recording():
        # housekeeping outside any request or message (the relay marking
        # rows sent, retention): no trace of its own for each statement
        return nullcontext()
    words = sql.split(None, 1)
    operation = words[0].upper() if words else "SQL"
    return tracer.start_as_current_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.namespace": database,
            "db.operation.name": operation,
            "db.query.text": sql[:2000],
        },
    )


# --- the context the events carry -------------------------------------------


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span recording now, or None."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None  # tracing off: the caller keeps the cause's trace
    span_context = span.get_span_context()
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


def traceparent_in(body: bytes) -> str | None:
    """The envelope's ``traceparent`` read straight from its JSON bytes (the
    relay does this for every row: no parse)."""
    at = body.find(_TRACEPARENT_KEY)
    if at < 0:
        return None
    start = at + len(_TRACEPARENT_KEY)
    return body[start : start + 55].decode("ascii", "replace")


def _context_of(carrier: Mapping[str, Any]) -> otel_context.Context:
    return propagate.extract({k: str(v) for k, v in carrier.items() if isinstance(v, str | bytes)})


@contextmanager
def publishing(
    routing_key: str, exchange: str, message_id: str, traceparent: str | None
) -> Iterator[dict[str, str]]:
    """The relay's publish span, a child of the event's creation context;
    yields the headers that carry it on (``traceparent``, ``tracestate``)."""
    if not _configured:  # tracing off: the context still travels, at no cost
        yield {"traceparent": traceparent} if traceparent else {}
        return
    parent = _context_of({"traceparent": traceparent}) if traceparent else None
    with tracer.start_as_current_span(
        f"{routing_key} publish",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "publish",
            "messaging.operation.name": "publish",
            "messaging.destination.name": exchange,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.message.id": message_id,
        },
    ):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        if not headers and traceparent:
            headers["traceparent"] = traceparent  # tracing off: the context still travels
        yield headers


@contextmanager
def processing(
    headers: Mapping[str, Any],
    envelope_traceparent: str | None,
    *,
    routing_key: str,
    exchange: str,
    queue: str,
    message_id: str,
    correlation_id: str,
    attempt: int,
) -> Iterator[trace.Span]:
    """The consumer's process span: a child of the context the message
    carries (its header, else the envelope's) and linked to it."""
    if not _configured:
        yield trace.INVALID_SPAN  # tracing off: nothing to record
        return
    carrier = headers if "traceparent" in headers else {"traceparent": envelope_traceparent or ""}
    parent = _context_of(carrier)
    creation = trace.get_current_span(parent).get_span_context()
    links: Sequence[Link] = [Link(creation)] if creation.is_valid else ()
    with tracer.start_as_current_span(
        f"{routing_key} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": exchange,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.consumer.group.name": queue,
            "messaging.message.id": message_id,
            "messaging.message.conversation_id": correlation_id,
            "shop.attempt": attempt,
        },
    ) as span:
        yield span


@contextmanager
def step(name: str, traceparent: str | None, *, order: str) -> Iterator[trace.Span]:
    """A span of the service's own (a sweep's step) in an order's trace."""
    parent = _context_of({"traceparent": traceparent}) if traceparent else None
    with tracer.start_as_current_span(
        name, context=parent, attributes={"messaging.message.conversation_id": order}
    ) as span:
        yield span


def failed(exc: BaseException) -> None:
    """The handler of the span running now failed (it will be retried or
    dead-lettered)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
