"""Prometheus metrics of the messaging core, one registry per service app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Counters and histograms for the outbox, relay and consumers.

    Each instance owns its registry, so several apps can live in one process
    (tests) without colliding in the global one."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_published = Counter(
            "shop_events_published_total",
            "Events the relay published with a broker confirm.",
            ["event_type"],
            registry=self.registry,
        ).labels  # called with event_type
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
