"""Prometheus metrics of the messaging core, one registry per service app."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .tracing import INTERNAL_PATHS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Counters and histograms for the outbox, relay and consumers.

    Each instance owns its registry, so several apps can live in one process
    (tests) without colliding in the global one."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._events_published = Counter(
            "shop_events_published_total",
            "Events the relay published with a broker confirm.",
            ["event_type"],
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "shop_outbox_publish_failures_total",
            "Outbox rows whose publish failed and stays pending.",
            registry=self.registry,
        )
        self.outbox_lag = Histogram(
            "shop_outbox_lag_seconds",
            "Time from commit of an outbox row to its confirmed publish.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "shop_events_consumed_total",
            "Messages taken off a queue, by outcome (handled, duplicate, retried, dead_lettered).",
            ["queue", "outcome"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "shop_handler_seconds",
            "Time to handle one event, commit included.",
            ["queue"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_responses = Counter(
            "shop_http_responses_total",
            "HTTP responses by method and status code (health and metrics not counted).",
            ["method", "code"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "shop_http_request_duration_seconds",
            "Time from a request's start to its response's first byte.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "shop_handlers_in_flight",
            "Handlers running now.",
            registry=self.registry,
        )
        info = Gauge(
            "shop_service_info",
            "The service this process runs.",
            ["service"],
            registry=self.registry,
        )
        info.labels(service=service).set(1)
        # Labelled children looked up once: labels() takes a lock and builds
        # its key on every call, and these are called once per message.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)`` (in the metric's label order), kept."""
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[metric, values] = metric.labels(*values)
        return child

    def published(self, event_type: str) -> None:
        """One event of ``event_type`` published with a confirm."""
        self._child(self._events_published, event_type).inc()

    def answered(self, method: str, code: int, seconds: float) -> None:
        """One HTTP response."""
        self._child(self.http_responses, method, str(code)).inc()
        self._child(self.http_seconds, method).observe(seconds)

    def consumed(self, queue: str, outcome: str, seconds: float) -> None:
        """One message taken off ``queue`` with ``outcome``, handled in ``seconds``."""
        self._child(self.events_consumed, queue, outcome).inc()
        self._child(self.handler_seconds, queue).observe(seconds)


class HttpMetrics:
    """ASGI middleware: every response's method, status code and time (what
    the HTTP panels and the ShopHttp5xx alert read)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(INTERNAL_PATHS):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500  # an exception before any response is a 500 to the client

        async def counted(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
                self.metrics.answered(scope["method"], code, time.perf_counter() - started)
                code = -1  # counted
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if code != -1:
                self.metrics.answered(scope["method"], code, time.perf_counter() - started)
