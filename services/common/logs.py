"""The services' log lines: ``<time>.<ms> <LEVEL> <logger>: <message>``."""

from __future__ import annotations

import logging
from typing import Any


class ServiceLogFormatter(logging.Formatter):
    """The services' formatter (``logging.json``). A consumer logs a line
    for every message it takes, so a line's cost is paid per message. The
    format names no source line, thread or process, so records stop
    collecting them (the logging HOWTO's "Optimization" switches, set when
    the services' logging is configured: not in a process that logs
    otherwise), and the time is formatted once a second."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logging._srcfile = None  # no sys._getframe() walk for findCaller
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        cached = self._second  # one read: a thread may replace it meanwhile
        if cached[0] != second:
            cached = self._second = (second, super().formatTime(record, datefmt))
        return cached[1]
