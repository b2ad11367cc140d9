"""Log lines of the stack's parts: parsed, interleaved by time, followed."""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\S*\s?(.*)$")


@dataclass(frozen=True, order=True)
class LogLine:
    timestamp: str  # ISO-like, sortable; "" when the source has none
    part: str
    text: str  # for people: "LEVEL logger: message"
    # a service's JSON line as it was written (services/common/logs.py)
    record: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def order(self) -> str | None:
        return self.record.get("order") if self.record else None

    def as_json(self) -> dict[str, Any]:
        """The line as JSON: the service's own object, or one made of the text."""
        if self.record is not None:
            return self.record
        return {"time": self.timestamp or None, "part": self.part, "message": self.text}


def _json_line(part: str, raw: str) -> list[LogLine] | None:
    """A service's JSON line for people (its traceback as lines of its own)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or "time" not in record or "message" not in record:
        return None
    stamp = str(record["time"])[:23]
    text = f"{record.get('level', '')} {record.get('logger', '')}: {record['message']}"
    lines = [LogLine(stamp, part, text, record)]
    for extra in str(record.get("exc_info") or "").splitlines():
        lines.append(LogLine(stamp, part, extra, record))
    return lines


def parse(part: str, raw_lines: Iterable[str], last_stamp: str = "") -> list[LogLine]:
    """Lines starting with a timestamp keep it; the others (a traceback's
    lines) take the one before, so they stay with their record. A service's
    JSON line is read as its fields."""
    lines = []
    for raw in raw_lines:
        raw = raw.rstrip("\n")
        if not raw:
            continue
        if raw.startswith("{"):
            parsed = _json_line(part, raw)
            if parsed is not None:
                lines.extend(parsed)
                last_stamp = parsed[0].timestamp
                continue
        match = _STAMP.match(raw)
        if match:
            last_stamp = match.group(1).replace(" ", "T").replace(",", ".")
            lines.append(LogLine(last_stamp, part, match.group(2)))
        else:
            lines.append(LogLine(last_stamp, part, raw))
    return lines


def interleave(sources: dict[str, list[LogLine]]) -> list[LogLine]:
    """Merge per-part lines by time, each part's own order kept."""
    return list(heapq.merge(*sources.values(), key=lambda line: line.timestamp))


def read_files(files: dict[str, Path]) -> list[LogLine]:
    sources = {}
    for part, path in files.items():
        try:
            with path.open(errors="replace") as handle:
                sources[part] = parse(part, handle)
        except FileNotFoundError:
            sources[part] = []
    return interleave(sources)


def follow_files(files: dict[str, Path], poll_s: float = 0.2) -> Iterator[LogLine]:
    """Everything so far, then new lines as they are written (until interrupted)."""
    yield from read_files(files)
    offsets = {part: path.stat().st_size if path.exists() else 0 for part, path in files.items()}
    stamps: dict[str, str] = {}
    while True:
        fresh: dict[str, list[LogLine]] = {}
        for part, path in files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets[part]:
                offsets[part] = 0  # truncated by a new `up`
            if size == offsets[part]:
                continue
            with path.open(errors="replace") as handle:
                handle.seek(offsets[part])
                chunk = handle.read()
            complete, _, _rest = chunk.rpartition("\n")
            if not complete:
                continue
            offsets[part] += len(complete.encode()) + 1
            fresh[part] = parse(part, complete.splitlines(), stamps.get(part, ""))
            if fresh[part]:
                stamps[part] = fresh[part][-1].timestamp
        yield from interleave(fresh)
        time.sleep(poll_s)
