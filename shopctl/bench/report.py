"""`shopctl bench --report PATH`: one self-contained HTML page (inline SVG, no
script, no download) with throughput and latency over time and the figures."""

from __future__ import annotations

import html
import json
from pathlib import Path

from shopctl.bench.flood import BenchResult, Figures


def _series(result: BenchResult) -> tuple[list[int], list[float]]:
    """Orders completed in each second, and their median checkout-to-completed."""
    start = min((c.sent for c in result.measured()), default=0.0)
    counts: dict[int, int] = {}
    latencies: dict[int, list[float]] = {}
    for checkout in result.measured():
        timeline = result.store.get(checkout.order or "")
        done = next((e for e in timeline if e.type == "OrderCompleted"), None) if timeline else None
        if done is None:
            continue
        second = int(done.seen_at - start)
        counts[second] = counts.get(second, 0) + 1
        latencies.setdefault(second, []).append((done.seen_at - checkout.sent) * 1000)
    seconds = range(max(counts, default=-1) + 1)
    medians = [sorted(latencies.get(s, [0]))[len(latencies.get(s, [0])) // 2] for s in seconds]
    return [counts.get(s, 0) for s in seconds], medians


def _chart(values: list[float], title: str, unit: str) -> str:
    width, height, pad = 640, 180, 30
    top = max(values, default=1) or 1
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>'
        f'<text x="{pad + 4}" y="{pad - 8}" font-size="12">{top:.0f} {unit}</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="12" text-anchor="end">'
        f"{len(values)} s</text>"
        f'<polyline fill="none" stroke="#1a56b8" stroke-width="2" points="{points}"/></svg>'
        "</figure>"
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;color:#1d2330}"
    "table{border-collapse:collapse}"
    "td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}"
    "figure{margin:1rem 0}pre{background:#f4f4f4;padding:1rem;overflow:auto}"
)


def write_report(result: BenchResult, figures: Figures, path: Path) -> None:
    completed, medians = _series(result)
    steps = "".join(
        f"<tr><td>{html.escape(step)}</td><td>{v.get('p50', '-')}</td>"
        f"<td>{v.get('p95', '-')}</td><td>{v.get('p99', '-')}</td></tr>"
        for step, v in figures["steps_ms"].items()
    )
    ratio = figures.get("ratio_to_baseline")
    against = f"; bare pipeline {figures['baseline_per_s']}/s, ratio {ratio:.0%}" if ratio else ""
    mode, machine = html.escape(figures["mode"]), html.escape(figures["machine"])
    page = (
        f'<!doctype html><meta charset="utf-8"><title>shop bench</title><style>{_STYLE}</style>'
        f"<h1>shop bench: {mode}</h1>"
        f"<p>{figures['duration_s']} s measured on {machine}; "
        f"<strong>{figures['completed_per_s']} completed orders/s</strong>{against}.</p>"
        + _chart([float(c) for c in completed], "orders completed each second", "/s")
        + _chart(medians, "checkout to OrderCompleted, median of each second", "ms")
        + "<h2>Each saga step (ms)</h2>"
        + f"<table><tr><th>step to</th><th>p50</th><th>p95</th><th>p99</th></tr>{steps}</table>"
        + f"<h2>All figures</h2><pre>{html.escape(json.dumps(figures, indent=2))}</pre>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
