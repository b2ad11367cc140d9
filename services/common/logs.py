"""The services' log lines: one JSON object a line (python-json-logger),
with the part, its instance, and, inside a handler or a request, the trace,
the span, the order (the saga's correlation id) and the event being handled.

    {"time": "2026-12-04T19:20:01.123+00:00", "level": "INFO", "part": "order",
     "instance": "order-1a2b", "logger": "services.common.consumer",
     "message": "order.stock.reserved: StockReserved … handled (saga 6c1f…)",
     "trace_id": "4bf9…", "span_id": "00f0…", "order": "6c1f…",
     "event_id": "…", "event_type": "StockReserved"}

`shopctl logs` renders them for people (``--json`` passes them through).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter

# the message being handled: set by the consumer around its handler
_handling: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "shop_handling", default=None
)


# who logs: the part and its instance, told once the process knows them
_identity = {"part": "", "instance": ""}


def identify(part: str, instance: str) -> None:
    _identity.update(part=part, instance=instance)


@contextmanager
def handling(order: str, event_id: str, event_type: str) -> Iterator[None]:
    """Every line logged inside names this order and event."""
    token = _handling.set((order, event_id, event_type))
    try:
        yield
    finally:
        _handling.reset(token)


class ServiceJsonFormatter(OrjsonFormatter):
    """The services' formatter (``logging.json``). A consumer logs a line
    for every message it takes, so a line's cost is paid per message: the
    record stops collecting the source line, thread and process (the logging
    HOWTO's "Optimization" switches, set when the services' logging is
    configured: not in a process that logs otherwise), and the time is
    formatted once a second."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logging._srcfile = None  # no sys._getframe() walk for findCaller
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        self._second: tuple[int, str, str] = (-1, "", "")

    def _time(self, created: float) -> str:
        second = int(created)
        cached = self._second  # one read: a thread may replace it meanwhile
        if cached[0] != second:
            stamp = datetime.fromtimestamp(second).astimezone()
            offset = stamp.strftime("%z")
            cached = self._second = (
                second,
                stamp.strftime("%Y-%m-%dT%H:%M:%S"),
                f"{offset[:3]}:{offset[3:]}",
            )
        return f"{cached[1]}.{int((created - second) * 1000):03d}{cached[2]}"

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = self._time(record.created)
        log_data["level"] = record.levelname
        log_data["part"] = _identity["part"]
        log_data["instance"] = _identity["instance"]
        log_data["logger"] = record.name
        log_data["message"] = record.message
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            log_data["trace_id"] = f"{span_context.trace_id:032x}"
            log_data["span_id"] = f"{span_context.span_id:016x}"
        handling = _handling.get()
        if handling is not None:
            log_data["order"], log_data["event_id"], log_data["event_type"] = handling
        elif (order := record.__dict__.get("order")) is not None:
            log_data["order"] = str(order)  # log.info(..., extra={"order": id})
        log_data.update(message_dict)
