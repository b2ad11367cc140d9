"""`shopctl bench --report`: what the page charts, that it needs no network,
and that a browser draws every chart in it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from shopctl.bench.flood import BenchResult, Checkout
from shopctl.bench.report import charts, write_report
from tests.unit.test_bench import event

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _run() -> tuple[BenchResult, dict]:
    """Two seconds of orders: four done in the first (10, 20, 30, 400 ms),
    one in the second (50 ms), one never done; three samples, the payment
    part missing from the second; two consumers' batch sizes."""
    result = BenchResult("paced 5/s", duration_s=2.0)
    result.measure_started = 100.0
    took = {"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.4, "e": 1.05}
    result.checkouts = [Checkout("happy", 100.0, 100.001, 202, order=order) for order in took] + [
        Checkout("happy", 100.0, 100.001, 202, order="never")
    ]
    for order, after in took.items():
        result.store.add(event("OrderCreated", order, 100.0 + after / 2, None, 1))
        result.store.add(event("OrderCompleted", order, 100.0 + after, f"{order}-1", 2))
    samples = [
        {
            "at_s": at,
            "memory_mb_by_part": {"order": 100 + at, **({"payment": 90.0} if at != 2 else {})},
            "cpu_by_part": {"order": 0.5, "payment": 0.25},
            "db_connections_by_part": {"order": 4, "payment": 3},
        }
        for at in (1, 2, 3)
    ]
    figures = {
        "mode": "paced 5/s",
        "machine": "test, 2 CPUs",
        "duration_s": 2.0,
        "completed_per_s": 2.5,
        "checkout_to_completed_ms": {"p50": 30.0, "p99": 1050.0},
        "steps_ms": {"OrderCompleted": {"p50": 1.0, "p95": 2.0, "p99": 3.0}},
        "over_time": samples,
        "growth": {"memory_mb": "steady (190 -> 193)"},
        "batches": {
            "order": {"batch_max": 32, "sizes": {"1": 40, "3": 7}},
            "payment": {"batch_max": 32, "sizes": {"2": 5}},
        },
    }
    return result, figures


def test_the_charts_hold_p50_p99_each_part_and_the_batch_sizes():
    result, figures = _run()
    drawn = {c["title"].split(",")[0].split(" by ")[0]: c for c in charts(result, figures)}
    done = drawn["orders completed each second"]
    assert done["x"] == [0, 1] and done["series"]["completed"] == [4, 1]
    latency = drawn["checkout to OrderCompleted"]
    assert latency["series"]["p50"] == [30.0, 1050.0]
    assert latency["series"]["p99"] == [400.0, 1050.0]  # the slow one shows in p99 only
    memory = drawn["memory"]
    assert memory["x"] == [1, 2, 3]
    assert memory["series"] == {"order": [101, 102, 103], "payment": [90.0, None, 90.0]}
    assert drawn["CPU"]["series"]["payment"] == [0.25] * 3
    assert drawn["database sessions"]["series"]["order"] == [4, 4, 4]
    sizes = drawn["batch sizes: batches of each size"]
    # grouped: at each size, order's bar just left of it and payment's just right
    assert sizes["bars"] and sizes["x"] == [0.8, 1.2, 1.8, 2.2, 2.8, 3.2]
    assert sizes["series"] == {
        "order": [40, None, 0, None, 7, None],
        "payment": [None, 0, None, 5, None, 0],
    }


def test_the_page_needs_no_network(tmp_path):
    result, figures = _run()
    figures["mode"] = "paced </script><b>5/s"  # text from outside is escaped
    page_path = tmp_path / "report.html"
    write_report(result, figures, page_path)  # type: ignore[arg-type]
    page = page_path.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "uPlot" in page and "<b>5/s" not in page
    data = re.search(r'<script type="application/json" id="charts">(.*?)</script>', page, re.S)
    assert data is not None
    assert len(json.loads(data.group(1))) == len(charts(result, figures))  # type: ignore[arg-type]


def test_a_browser_draws_every_chart(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)")
    result, figures = _run()
    page = tmp_path / "report.html"
    write_report(result, figures, page)  # type: ignore[arg-type]
    shown = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--user-data-dir=" + str(tmp_path / "profile"),
            "--window-size=1100,2400",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    dom = shown.stdout
    # uPlot builds a div.uplot with a canvas and a legend of every series
    assert dom.count('class="uplot') == len(charts(result, figures)), dom[-2000:]  # type: ignore[arg-type]
    assert dom.count("<canvas") == len(charts(result, figures))  # type: ignore[arg-type]
    for name in ("p50", "p99", "order", "payment"):
        assert f">{name}<" in dom, name
