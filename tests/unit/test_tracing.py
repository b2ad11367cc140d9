"""Traces: the span files the sandbox writes read back as OTLP, the OTLP
export received by a real HTTP receiver in another process, and the
context an event carries from its creation to its processing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest
from google.protobuf.json_format import Parse
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.common import tracing
from services.common.spanfile import JsonLinesSpanExporter
from shopctl.observe.spans import read_spans, render_waterfall, traces_of_order

ROOT = Path(__file__).resolve().parents[2]


def consume(headers, creation, key: str, message_id: str, order: str, attempt: int):
    """The consumer's process span for one message of ``key``."""
    return tracing.processing(
        headers,
        creation,
        routing_key=key,
        exchange="shop.events",
        queue=f"q.{key}",
        message_id=message_id,
        correlation_id=order,
        attempt=attempt,
    )


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A provider of the test's own (the global one is never set here)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "order"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    saved = tracing.tracer, tracing._configured
    tracing.tracer, tracing._configured = provider.get_tracer("shop"), True
    yield provider, memory
    tracing.tracer, tracing._configured = saved


def test_an_event_carries_its_creation_context_to_the_process_span(provider) -> None:
    """The header carries the creation context itself (the envelope's: one
    source of truth); publish is a child of it, and so is the process span,
    which is also linked to it; both carry the messaging attributes."""
    _, memory = provider
    with tracing.tracer.start_as_current_span("POST /carts/{cart_id}/checkout") as request:
        creation = tracing.current_traceparent()
    assert creation is not None and creation[3:35] == f"{request.get_span_context().trace_id:032x}"
    body = b'{"id":"e1","traceparent":"' + creation.encode() + b'","type":"CartCheckedOut"}'
    assert tracing.traceparent_in(body) == creation
    with tracing.publishing("cart.checked_out", "shop.events", "e1", creation) as headers:
        pass
    assert headers == {"traceparent": creation}
    with consume(headers, creation, "cart.checked_out", "e1", "order-1", 2):
        tracing.failed(RuntimeError("boom"))
    spans = {s.name: s for s in memory.get_finished_spans()}
    publish, process = spans["cart.checked_out publish"], spans["cart.checked_out process"]
    root = spans["POST /carts/{cart_id}/checkout"]
    assert publish.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert publish.parent.span_id == root.context.span_id  # the creation context
    assert process.parent.span_id == root.context.span_id
    assert [link.context.span_id for link in process.links] == [root.context.span_id]
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}
    assert process.attributes["messaging.system"] == "rabbitmq"
    assert process.attributes["messaging.destination.name"] == "shop.events"
    assert process.attributes["messaging.rabbitmq.destination.routing_key"] == "cart.checked_out"
    assert process.attributes["messaging.consumer.group.name"] == "q.cart.checked_out"
    assert process.attributes["messaging.message.id"] == "e1"
    assert process.attributes["messaging.message.conversation_id"] == "order-1"
    assert process.status.status_code == StatusCode.ERROR and process.events[0].name == "exception"


def test_with_tracing_off_nothing_is_added_and_the_envelope_carries_the_context(
    provider,
) -> None:
    """Tracing off (OTEL_SDK_DISABLED, or no exporter): no header, no span;
    a consumer that traces continues the envelope's context."""
    _, memory = provider
    creation = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    tracing._configured = False
    with tracing.publishing("order.created", "shop.events", "e2", creation) as headers:
        assert tracing.current_traceparent() is None
    assert headers == {}
    tracing._configured = True  # the consuming part traces
    with consume(headers, creation, "order.created", "e2", "o", 1):
        pass
    [process] = memory.get_finished_spans()
    assert f"{process.context.trace_id:032x}" == creation[3:35]
    assert f"{process.parent.span_id:016x}" == creation[36:52]


def test_the_span_files_are_otlp_json_and_read_back_as_one_tree(tmp_path: Path, provider) -> None:
    _, memory = provider
    with tracing.tracer.start_as_current_span("POST /api/carts/{id}/checkout"):
        with tracing.publishing(
            "order.created", "shop.events", "e3", tracing.current_traceparent()
        ) as headers:
            pass
        with consume(headers, None, "order.created", "e3", "6c1f0000-aaaa", 1):
            tracing.failed(ValueError("out of stock"))
    exporter = JsonLinesSpanExporter(tmp_path / "order.i1.jsonl")
    exporter.export(memory.get_finished_spans())
    exporter.shutdown()
    line = (tmp_path / "order.i1.jsonl").read_text().splitlines()[0]
    # valid OTLP/JSON: protobuf's JSON reader takes it once the ids are back in base64
    raw = json.loads(line)
    for span in raw["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId", "parentSpanId"):
            if span.get(key):
                assert len(span[key]) in (16, 32) and int(span[key], 16) >= 0  # hex, as OTLP/JSON
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        for link in span.get("links", []):
            for key in ("traceId", "spanId"):
                link[key] = base64.b64encode(bytes.fromhex(link[key])).decode()
    request = Parse(json.dumps(raw), ExportTraceServiceRequest())
    assert len(request.resource_spans[0].scope_spans[0].spans) == 3
    # the same request as the SDK's own OTLP encoder makes
    official = encode_spans(memory.get_finished_spans())
    assert request == official

    spans = read_spans(tmp_path)
    assert {s.part for s in spans} == {"order"}
    [trace_id] = traces_of_order(spans, "6c1f")
    assert traces_of_order(spans, "ffff") == []
    lines = [line.plain for line in render_waterfall([s for s in spans if s.trace_id == trace_id])]
    assert lines[0].split()[4] == "POST"  # the root first, its children indented under it
    assert "  order.created publish" in lines[1] and "  order.created process" in lines[2]
    assert "ValueError: out of stock" in lines[2]


class _Receiver(BaseHTTPRequestHandler):
    """A small OTLP/HTTP receiver: decodes each export request."""

    received: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).received.append((self.path, request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_otlp_export_reaches_a_receiver_from_another_process(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    script = (
        "from services.common import tracing\n"
        "print(tracing.setup_tracing('payment', 'payment-1', '/nonexistent'))\n"
        "with tracing.tracer.start_as_current_span('stock.reserved process'):\n"
        "    pass\n"
        "tracing.flush()\n"
    )
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    server.shutdown()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("otlp http://127.0.0.1:")  # OTLP wins over the span files
    [(path, request)] = _Receiver.received
    assert path == "/v1/traces"
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "payment"
    assert resource["service.instance.id"] == "payment-1"
    assert resource["deployment.environment"] == "test"  # the standard OTEL_* variables
    [span] = request.resource_spans[0].scope_spans[0].spans
    assert span.name == "stock.reserved process"


def test_otel_sdk_disabled_turns_it_off(tmp_path: Path) -> None:
    script = "from services.common import tracing; print(tracing.setup_tracing('order', 'o', '.'))"
    env = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.strip() == "off: OTEL_SDK_DISABLED=true", done.stderr
    assert not list(tmp_path.iterdir())


async def test_a_request_is_a_server_span_named_by_its_route_and_a_call_carries_it(
    provider,
) -> None:
    from fastapi import FastAPI

    _, memory = provider
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/carts/{cart_id}")
    async def cart(cart_id: str) -> dict[str, str]:
        with tracing.client_call("GET", f"http://127.0.0.1:8101/products/{cart_id}") as sent:
            tracing.answered(503)
        return sent

    app.add_middleware(tracing.ServerSpans)
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    answer: dict[str, object] = {}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        answer.setdefault(str(message["type"]), message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/carts/c1",
        "raw_path": b"/carts/c1",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"x"), (b"traceparent", caller.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("x", 80),
    }
    await app(scope, receive, send)
    spans = {s.name: s for s in memory.get_finished_spans()}
    server, client = spans["GET /carts/{cart_id}"], spans["GET"]
    assert f"{server.context.trace_id:032x}" == caller[3:35]  # the caller's trace
    assert f"{server.parent.span_id:016x}" == caller[36:52]
    assert server.attributes["http.route"] == "/carts/{cart_id}"
    assert server.attributes["http.response.status_code"] == 200
    assert client.parent.span_id == server.context.span_id
    assert client.attributes["http.response.status_code"] == 503
    assert client.status.status_code == StatusCode.ERROR
    # the call sends its own context on
    sent = orjson.loads(answer["http.response.body"]["body"])
    assert sent["traceparent"][36:52] == f"{client.context.span_id:016x}"


async def test_sqlalchemy_statements_are_spans_inside_a_span_only(provider) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.conftest import PG_ADMIN_URL

    _, memory = provider
    engine = create_async_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"))
    tracing.instrument_engine(engine)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # outside any span: no trace of its own
            with tracing.tracer.start_as_current_span("handler") as handler:
                await conn.execute(text("SELECT 2"))
    finally:
        await engine.dispose()
    [statement] = [s for s in memory.get_finished_spans() if s.name == "SELECT"]
    assert statement.parent.span_id == handler.get_span_context().span_id
    assert statement.attributes["db.query.text"] == "SELECT 2"
    assert statement.attributes["db.system"] == "postgresql"
