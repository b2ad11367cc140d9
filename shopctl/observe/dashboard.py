"""The shop's Grafana dashboard, made in code with grafana-foundation-sdk
(a dev dependency; the JSON it makes is committed at
observability/grafana/dashboards/shop.json and provisioned with the
Prometheus datasource). Every panel's query is in PANELS, so a test can run
each one against a real Prometheus and expect data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_FILE = ROOT / "observability" / "grafana" / "dashboards" / "shop.json"
DATASOURCE_UID = "prometheus"  # observability/grafana/provisioning/datasources/prometheus.yml
SAGA_QUEUES = 'queue!~".+\\\\.dlq|shop\\\\.retry\\\\..+|.+\\\\.saga-events"'


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: str
    description: str


PANELS = [
    Panel(
        "Orders a second, by outcome",
        "sum by (outcome, reason) (rate(shop_saga_outcomes_total[1m]))",
        "{{outcome}} {{reason}}",
        "reqps",
        "Sagas that ended each second: COMPLETED, or CANCELLED with its reason.",
    ),
    Panel(
        "Checkout to end (p95)",
        "histogram_quantile(0.95,"
        " sum by (le, outcome) (rate(shop_saga_duration_seconds_bucket[5m])))",
        "{{outcome}}",
        "s",
        "From the order's creation at checkout to COMPLETED or CANCELLED; "
        "exemplars link to the trace.",
    ),
    Panel(
        "Each saga step (p95 handler time)",
        "histogram_quantile(0.95, sum by (le, queue) (rate(shop_handler_seconds_bucket[1m])))",
        "{{queue}}",
        "s",
        "Time to handle one event, commit included, by the queue it came from.",
    ),
    Panel(
        "Dead letters",
        'sum by (queue) (rabbitmq_detailed_queue_messages{queue=~".+\\\\.dlq"})',
        "{{queue}}",
        "short",
        "Messages waiting on each dead-letter queue (shopctl dlq list).",
    ),
    Panel(
        "Outbox lag (p99)",
        "histogram_quantile(0.99, sum by (le, job) (rate(shop_outbox_lag_seconds_bucket[1m])))",
        "{{job}}",
        "s",
        "From the commit of an outbox row to its confirmed publish.",
    ),
    Panel(
        "Consumers per queue",
        f"max by (queue) (rabbitmq_detailed_queue_consumers{{{SAGA_QUEUES}}})",
        "{{queue}}",
        "short",
        "A saga queue at 0 has no part taking from it (ShopQueueWithoutConsumer).",
    ),
    Panel(
        "HTTP 5xx ratio",
        '(sum by (job) (rate(shop_http_responses_total{code=~"5.."}[1m]))'
        " or sum by (job) (rate(shop_http_responses_total[1m])) * 0)"
        " / sum by (job) (rate(shop_http_responses_total[1m]))",
        "{{job}}",
        "percentunit",
        "The share of each part's answers that were 5xx (ShopHttp5xx above 5 %).",
    ),
]


def build() -> dict[str, Any]:
    """The dashboard's JSON model."""
    from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
    from grafana_foundation_sdk.builders.prometheus import Dataquery
    from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import DataSourceRef

    source = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    dashboard = (
        Dashboard("shop: the saga")
        .uid("shop-saga")
        .tags(["shop", "generated"])
        .refresh("10s")
        .time("now-30m", "now")
        .with_row(Row("Sagas"))
    )
    for panel in PANELS:
        dashboard = dashboard.with_panel(
            Timeseries()
            .title(panel.title)
            .description(panel.description)
            .unit(panel.unit)
            .datasource(source)
            .span(12)
            .height(8)
            .with_target(
                Dataquery()
                .expr(panel.expr)
                .legend_format(panel.legend)
                .exemplar(True)
                .ref_id("A")
                .datasource(source)
            )
        )
    model = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(dashboard.build()))
    return dict(model)


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if (
    __name__ == "__main__"
):  # python -m shopctl.observe.dashboard > observability/grafana/dashboards/shop.json
    print(render(), end="")
