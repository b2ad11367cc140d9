"""`shopctl bench --report PATH`: one self-contained HTML page with the run
over time and every figure. The charts are drawn by uPlot (vendored in
``vendor/``, inlined into the page: it opens with no network): orders a
second, p50 and p99 a second, and each part's memory, CPU and database
sessions at every sample, and the consumers' batch sizes."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from shopctl.bench.flood import BenchResult, Figures

UPLOT_VERSION = "1.6.32"
VENDOR = Path(__file__).with_name("vendor")


def _per_second(result: BenchResult) -> dict[str, list[Any]]:
    """Orders completed in each second of the run, and the p50 and p99 of
    their checkout-to-OrderCompleted (ms); a second with none has no latency."""
    start = min((c.sent for c in result.measured()), default=0.0)
    latencies: dict[int, list[float]] = {}
    for checkout in result.measured():
        timeline = result.store.get(checkout.order or "")
        done = next((e for e in timeline if e.type == "OrderCompleted"), None) if timeline else None
        if done is None:
            continue
        second = int(done.seen_at - start)
        latencies.setdefault(second, []).append((done.seen_at - checkout.sent) * 1000)
    seconds = list(range(max(latencies, default=-1) + 1))

    def at(second: int, q: float) -> float | None:
        values = sorted(latencies.get(second, []))
        return round(values[min(len(values) - 1, int(len(values) * q))], 1) if values else None

    return {
        "x": seconds,
        "completed": [len(latencies.get(s, [])) for s in seconds],
        "p50": [at(s, 0.5) for s in seconds],
        "p99": [at(s, 0.99) for s in seconds],
    }


def _by_part(samples: list[dict[str, Any]], key: str) -> dict[str, list[Any]]:
    """One series a part of a per-part sample (memory, CPU, sessions), in
    the samples' order; a part missing from a sample is a gap."""
    parts = sorted({part for s in samples for part in (s.get(key) or {})})
    return {part: [(s.get(key) or {}).get(part) for s in samples] for part in parts}


def charts(result: BenchResult, figures: Figures) -> list[dict[str, Any]]:
    """What the page draws, as data: a title, a unit, the x values and one
    series a line (or a bar, for the batch sizes)."""
    second = _per_second(result)
    samples = figures.get("over_time") or []
    at = [s["at_s"] for s in samples]
    drawn: list[dict[str, Any]] = [
        {
            "title": "orders completed each second",
            "unit": "orders/s",
            "x": second["x"],
            "xlabel": "s",
            "series": {"completed": second["completed"]},
        },
        {
            "title": "checkout to OrderCompleted, p50 and p99 of each second",
            "unit": "ms",
            "x": second["x"],
            "xlabel": "s",
            "series": {"p50": second["p50"], "p99": second["p99"]},
        },
    ]
    for key, title, unit in (
        ("memory_mb_by_part", "memory by part (proportional set size)", "MB"),
        ("cpu_by_part", "CPU by part", "CPUs"),
        ("db_connections_by_part", "database sessions by part", "sessions"),
    ):
        series = _by_part(samples, key)
        if series:
            drawn.append({"title": title, "unit": unit, "x": at, "xlabel": "s", "series": series})
    batches = figures.get("batches") or {}
    sizes = sorted({int(size) for b in batches.values() for size in (b.get("sizes") or {})})
    if sizes:
        drawn.append(_grouped_bars(sizes, batches))
    return drawn


def _grouped_bars(sizes: list[int], batches: dict[str, Any]) -> dict[str, Any]:
    """The batch sizes as grouped bars: at each size, a bar a consumer side
    by side (each its own x just off the size, so one x axis holds them)."""
    names = list(batches)
    width = 0.8 / len(names)
    x: list[float] = []
    series: dict[str, list[int | None]] = {name: [] for name in names}
    for size in sizes:
        for n, name in enumerate(names):
            x.append(round(size + (n - (len(names) - 1) / 2) * width, 4))
            for other in names:
                count = (batches[other].get("sizes") or {}).get(str(size), 0)
                series[other].append(count if other == name else None)
    return {
        "title": "batch sizes: batches of each size, the last 1,000 of each consumer",
        "unit": "batches",
        "x": x,
        "xlabel": "messages in the batch",
        "series": series,
        "bars": True,
    }


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#1d2330}"
    "table{border-collapse:collapse}"
    "td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}"
    "figure{margin:1.5rem 0}figcaption{font-weight:600;margin-bottom:.3rem}"
    "pre{background:#f4f4f4;padding:1rem;overflow:auto}"
)

# Each chart from its data: the series in the palette's colours, gaps where a
# value is missing, the legend showing the values under the cursor.
_DRAW = """
const PALETTE = ["#1a56b8", "#d1495b", "#2e933c", "#e08e0b", "#7b4bb7",
                 "#00798c", "#8c564b", "#555555", "#b5a100", "#c2185b"];
for (const [i, chart] of JSON.parse(document.getElementById("charts").textContent).entries()) {
  const figure = document.getElementById("chart-" + i);
  const names = Object.keys(chart.series);
  const bars = chart.bars ? uPlot.paths.bars({size: [0.9, 80], align: 0}) : null;
  const xs = chart.x.filter((v) => v !== null);
  const xScale = chart.bars
    ? {time: false, range: () => [Math.floor(xs[0]) - 0.5, Math.ceil(xs[xs.length - 1]) + 0.5]}
    : {time: false};
  const series = [{label: chart.xlabel}].concat(names.map((name, n) => ({
    label: name,
    stroke: PALETTE[n % PALETTE.length],
    fill: chart.bars ? PALETTE[n % PALETTE.length] + "cc" : undefined,
    width: chart.bars ? 0 : 2,
    paths: bars || undefined,
    points: {show: !chart.bars && chart.x.length < 40},
  })));
  const data = [chart.x].concat(names.map((name) => chart.series[name]));
  new uPlot({
    width: Math.min(figure.clientWidth || 900, 900),
    height: 240,
    scales: {x: xScale, y: {range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1]}},
    axes: [{label: chart.xlabel, grid: {show: true},
            incrs: chart.bars ? [1, 2, 5, 10, 20, 50] : undefined},
           {label: chart.unit, grid: {show: true}, size: 60}],
    series: series,
  }, data, figure);
}
"""


def write_report(result: BenchResult, figures: Figures, path: Path) -> None:
    drawn = charts(result, figures)
    steps = "".join(
        f"<tr><td>{html.escape(step)}</td><td>{v.get('p50', '-')}</td>"
        f"<td>{v.get('p95', '-')}</td><td>{v.get('p99', '-')}</td></tr>"
        for step, v in figures["steps_ms"].items()
    )
    ratio = figures.get("ratio_to_baseline")
    against = f"; bare pipeline {figures['baseline_per_s']}/s, ratio {ratio:.0%}" if ratio else ""
    mode, machine = html.escape(figures["mode"]), html.escape(figures["machine"])
    latency = figures.get("checkout_to_completed_ms") or {}
    growth = figures.get("growth") or {}
    grows = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(verdict)}</td></tr>"
        for key, verdict in growth.items()
    )
    figures_of_charts = "".join(
        f'<figure><figcaption>{html.escape(c["title"])}</figcaption><div id="chart-{i}"></div>'
        "</figure>"
        for i, c in enumerate(drawn)
    )
    # in a <script> element only "</" can end it early
    data = json.dumps(drawn).replace("</", "<\\/")
    page = (
        f'<!doctype html><meta charset="utf-8"><title>shop bench: {mode}</title>'
        f"<style>{_STYLE}{(VENDOR / 'uPlot.min.css').read_text()}</style>"
        f"<h1>shop bench: {mode}</h1>"
        f"<p>{figures['duration_s']} s measured on {machine}; "
        f"<strong>{figures['completed_per_s']} completed orders/s</strong>{against}; "
        f"checkout to OrderCompleted p50 {latency.get('p50', '-')} ms, "
        f"p99 {latency.get('p99', '-')} ms.</p>"
        "<noscript><p>The charts are drawn by a script inside this page (uPlot "
        f"{UPLOT_VERSION}, no download); with scripts off, the figures below are all "
        "there is.</p></noscript>"
        + figures_of_charts
        + (f"<h2>Over the run</h2><table>{grows}</table>" if grows else "")
        + "<h2>Each saga step (ms)</h2>"
        + f"<table><tr><th>step to</th><th>p50</th><th>p95</th><th>p99</th></tr>{steps}</table>"
        + f"<h2>All figures</h2><pre>{html.escape(json.dumps(figures, indent=2))}</pre>"
        + f'<script type="application/json" id="charts">{data}</script>'
        + f"<script>{(VENDOR / 'uPlot.iife.min.js').read_text()}</script>"
        + f"<script>{_DRAW}</script>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
