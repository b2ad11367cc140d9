"""The services' log formatter: the same lines as the plain format, cheaper."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.logs import ServiceLogFormatter

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
    yield
    (
        logging._srcfile,
        logging.logThreads,
        logging.logProcesses,
        logging.logMultiprocessing,
    ) = saved


def test_lines_are_the_plain_formats_across_seconds(switches: None) -> None:
    spec = json.loads(CONFIG.read_text())["formatters"]["timestamped"]
    assert spec["()"] == "services.common.logs.ServiceLogFormatter"
    plain = logging.Formatter(spec["format"], spec["datefmt"])
    lean = ServiceLogFormatter(spec["format"], spec["datefmt"])
    record = logging.LogRecord("shop.x", logging.INFO, "f.py", 1, "n=%d", (1,), None)
    for created in (1_700_000_000.25, 1_700_000_000.9, 1_700_000_001.1, 1_700_000_000.5):
        record.created = created
        record.msecs = (created - int(created)) * 1000
        assert lean.format(record) == plain.format(record)


def test_records_stop_collecting_what_the_format_never_shows(switches: None) -> None:
    ServiceLogFormatter("%(message)s")
    record = logging.getLogger("shop.x").makeRecord("shop.x", logging.INFO, "?", 0, "m", (), None)
    assert record.process is None and record.thread is None
    assert logging._srcfile is None
