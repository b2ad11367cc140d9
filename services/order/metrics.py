"""The order service's saga figures: how sagas end, and how long from the
checkout to their end (with the trace id as an exemplar), and how many
orders wait past their deadline."""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SAGA_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class SagaMetrics:
    def __init__(self) -> None:
        self.outcomes = Counter(
            "shop_saga_outcomes_total",
            "Sagas that ended, by outcome (COMPLETED, CANCELLED) and cancel reason.",
            ["outcome", "reason"],
            registry=None,
        )
        self.duration = Histogram(
            "shop_saga_duration_seconds",
            "From the order's creation at checkout to its end, by outcome.",
            ["outcome"],
            buckets=_SAGA_BUCKETS,
            registry=None,
        )
        self.overdue = Gauge(
            "shop_orders_overdue",
            "Orders not ended whose step deadline passed (the sweep cancels them).",
            registry=None,
        )

    def register(self, registry: CollectorRegistry) -> None:
        for collector in (self.outcomes, self.duration, self.overdue):
            registry.register(collector)

    def ended(self, outcome: str, reason: str, created_at: datetime) -> None:
        """An order ended (after its commit)."""
        seconds = max((datetime.now(UTC) - created_at).total_seconds(), 0.0)
        self.outcomes.labels(outcome, reason or "none").inc()
        span = trace.get_current_span().get_span_context()
        exemplar = {"trace_id": f"{span.trace_id:032x}"} if span.is_valid else None
        self.duration.labels(outcome).observe(seconds, exemplar=exemplar)
