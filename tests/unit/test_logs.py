"""The services' log lines: one JSON object a line, with the part, the
trace, the order and the event being handled."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from services.common import logs
from services.common.logs import ServiceJsonFormatter

CONFIG = Path(__file__).resolve().parents[2] / "services" / "common" / "logging.json"


@pytest.fixture
def switches() -> Iterator[None]:
    """The formatter sets logging's process-wide switches: put them back."""
    saved = (
        logging._srcfile,
        logging.logThreads,
        logging.logProcesses,
        logging.logMultiprocessing,
    )
    identity = dict(logs._identity)
    yield
    (
        logging._srcfile,
        logging.logThreads,
        logging.logProcesses,
        logging.logMultiprocessing,
    ) = saved
    logs._identity.update(identity)


def _formatter() -> ServiceJsonFormatter:
    spec = json.loads(CONFIG.read_text())["formatters"]["json"]
    assert spec["()"] == "services.common.logs.ServiceJsonFormatter"
    return ServiceJsonFormatter()


def test_a_line_is_json_with_the_part_and_a_time_right_across_seconds(switches: None) -> None:
    formatter = _formatter()
    logs.identify("order", "order-7f3a")
    record = logging.LogRecord("shop.x", logging.INFO, "f.py", 1, "n=%d", (1,), None)
    for created in (1_700_000_000.25, 1_700_000_000.9, 1_700_000_001.1, 1_700_000_000.5):
        record.created = created
        line = json.loads(formatter.format(record))
        assert datetime.fromisoformat(line["time"]).timestamp() == pytest.approx(created, abs=1e-3)
        assert line["time"].startswith(
            datetime.fromtimestamp(created).strftime("%Y-%m-%dT%H:%M:%S")
        )
    assert line["level"] == "INFO" and line["message"] == "n=1" and line["logger"] == "shop.x"
    assert (line["part"], line["instance"]) == ("order", "order-7f3a")
    assert "trace_id" not in line and "order" not in line  # outside a span and a handler


def test_inside_a_handler_a_line_names_the_trace_the_order_and_the_event(switches: None) -> None:
    formatter = _formatter()
    context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(1),
    )
    with (
        trace.use_span(NonRecordingSpan(context)),
        logs.handling("6c1f0000-order", "e-1", "StockReserved"),
    ):
        record = logging.getLogger("shop.x").makeRecord(
            "shop.x", logging.WARNING, "?", 0, "boom", (), None
        )
        line = json.loads(formatter.format(record))
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["span_id"] == "00f067aa0ba902b7"
    assert (line["order"], line["event_id"], line["event_type"]) == (
        "6c1f0000-order",
        "e-1",
        "StockReserved",
    )


def test_a_traceback_stays_in_its_line(switches: None) -> None:
    formatter = _formatter()
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("shop.x").makeRecord(
            "shop.x", logging.ERROR, "?", 0, "failed", (), __import__("sys").exc_info()
        )
    text = formatter.format(record)
    assert "\n" not in text
    assert "ValueError: bad" in json.loads(text)["exc_info"]


def test_records_stop_collecting_what_the_line_never_shows(switches: None) -> None:
    ServiceJsonFormatter()
    record = logging.getLogger("shop.x").makeRecord("shop.x", logging.INFO, "?", 0, "m", (), None)
    assert record.process is None and record.thread is None
    assert logging._srcfile is None
