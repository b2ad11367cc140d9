"""OpenTelemetry traces for every part: one checkout is one trace, from the
gateway's request through every handler, retry and compensation.

- HTTP: a SERVER span a request (an ASGI middleware on every app) and a
  CLIENT span a call (the one upstream client, services/common/upstream.py);
  the client sends ``traceparent`` and the next part's server span
  continues it.
- SQL: a CLIENT span a statement: the messaging core's driver's round trips
  (``statement``) and SQLAlchemy's (its cursor events).
- These spans are our own, by the semantic conventions, not the FastAPI,
  aiohttp and psycopg instrumentations: those cost 3 to 6 times as much CPU
  a span (measured, docs/performance.md), and psycopg's did not see the
  driver's own cursors, where most statements run.
- Events: the outbox breaks the usual publish instrumentation (the relay
  publishes later, in another task), so the trace context travels with the
  event. ``uow.emit`` writes the current span's context into the envelope's
  ``traceparent`` (the creation context, stored with the outbox row); the
  relay sends that context as the ``traceparent``/``tracestate`` AMQP
  headers, in a ``<routing key> publish`` span of its own, a child of it;
  the consumer's ``<routing key> process`` span is a child of the creation
  context and also linked to it (the messaging semantic conventions). The
  header and the envelope carry the same context: one source of truth,
  read from the header first.

Export: OTLP over HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its traces
variant) is set, with the standard ``OTEL_*`` variables; else, when
``SHOP_SPANS_DIR`` is set (the sandbox sets it), OTLP-JSON lines in one file
per process there, which ``shopctl trace --spans`` reads; else nothing is
recorded. ``OTEL_SDK_DISABLED=true`` turns it all off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    _configured = True
    return where


def _disabled_instrumentations() -> set[str]:
    """OpenTelemetry's own switch: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sqlalchemy,..."""
    names = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return {name.strip() for name in names.split(",") if name.strip()}


# --- HTTP: server spans in, client spans out --------------------------------
#
# Lean spans of our own, by the HTTP and database semantic conventions,
# instead of the FastAPI, aiohttp and psycopg instrumentations: measured on
# this machine, FastAPI's added 230 us of CPU to a request and psycopg's
# 110 us to a statement, where a span of our own costs about 40 us, export
# included (docs/performance.md, "Tracing").

# the health router's paths and the control paths: neither traced nor
# counted in the HTTP metrics (services/common/metrics.py)
INTERNAL_PATHS = ("/healthz", "/readyz", "/metrics", "/inflight", "/control")


class ServerSpans:
    """ASGI middleware: a SERVER span a request, the child of the
    ``traceparent`` the request carries; named ``METHOD route`` once the
    router has matched it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(INTERNAL_PATHS):
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        method = scope["method"]
        span = tracer.start_span(
            method,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
        )
        status = 500

        async def sent(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with trace.use_span(span, end_on_exit=False, record_exception=True):
                await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            if route is not None and hasattr(route, "path"):
                span.update_name(f"{method} {route.path}")
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()


@contextmanager
def client_call(method: str, url: str) -> Iterator[dict[str, str]]:
    """A CLIENT span for one HTTP call; yields the headers that carry its
    context to the server (``traceparent``). Nothing when tracing is off or
    outside a span."""
    if not _configured or not trace.get_current_span().is_recording():
        yield {}
        return
    with tracer.start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url},
    ):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        yield headers


def answered(status: int) -> None:
    """The status of the HTTP call whose client span runs now."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


def instrument_app(app: Any) -> None:
    """Server spans on one app (``traceparent`` in)."""
    if _configured and "fastapi" not in _disabled_instrumentations():
        app.add_middleware(ServerSpans)


# --- SQL ----------------------------------------------------------------------


def instrument_engine(engine: Any) -> None:
    """A CLIENT span a statement SQLAlchemy sends (the API's reads, the
    migrations), from its cursor events: SQLAlchemy's own instrumentation
    refuses SQLAlchemy 2.1. The messaging core's driver makes its own
    (``statement``)."""
    if not _configured or "sqlalchemy" in _disabled_instrumentations():
        return
    from sqlalchemy import event

    sync_engine = getattr(engine, "sync_engine", engine)
    database = sync_engine.url.database or ""

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if context is not None and trace.get_current_span().is_recording():
            context._shop_span = _statement_span(sql, database)

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        span = getattr(context, "_shop_span", None)
        if span is not None:
            span.end()
            context._shop_span = None

    @event.listens_for(sync_engine, "handle_error")
    def _error(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, "_shop_span", None)
        if span is not None:
            error = exception_context.original_exception
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
            context._shop_span = None


def _statement_span(sql: str, database: str) -> trace.Span:
    words = sql.split(None, 1)
    operation = words[0].upper() if words else "SQL"
    return tracer.start_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.namespace": database,
            "db.operation.name": operation,
            "db.query.text": sql[:1000],
        },
    )


def flush() -> None:
    """Export what is buffered (a part stopping)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if callable(force_flush):
        force_flush(5_000)


@contextmanager
def statement(sql: str, database: Callable[[], str]) -> Iterator[None]:
    """A span for one round trip of the messaging core's driver
    (services/common/db.py), which sends its statements itself (the BEGIN,
    the inbox row and the COMMIT ride with a statement). Nothing when
    tracing is off, or outside a span (the relay marking rows sent,
    retention: no trace of its own for each)."""
    if not _configured or not trace.get_current_span().is_recording():
        yield
        return
    span = _statement_span(sql, database())
    try:
        yield
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()


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
    """The relay's publish span, a child of the event's creation context
    (stored with the outbox row, in the envelope); yields the headers that
    carry that same context to the consumers (``traceparent``,
    ``tracestate``): one source of truth, the envelope's and the header's
    the same."""
    if not _configured:
        # tracing off: no header to encode and decode on every message; the
        # context still travels in the envelope, where a consumer that
        # traces finds it
        yield {}
        return
    creation = _context_of({"traceparent": traceparent}) if traceparent else None
    with tracer.start_as_current_span(
        f"{routing_key} publish",
        context=creation,
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
        if creation is not None:
            propagate.inject(headers, context=creation)
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
