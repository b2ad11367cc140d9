"""The outbox rows of one saga in every service's database: what was
committed to be published, and whether it has been (for bundles and `why`).
Rows retention took out of an outbox are read from the service's saga
history (kept 7 days by default), so an old order's saga is still there."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from shopctl.errors import ShopError, UsageError
from shopctl.runtimes.base import Runtime
from shopctl.stack import SERVICES

_SAFE_ID = re.compile(r"[0-9A-Za-z_.:-]{1,200}")
_PREFIX = re.compile(r"[0-9a-fA-F-]{1,36}")  # no LIKE wildcard, no quote
_SHOWN = 5  # ids named when a start is ambiguous


@dataclass(frozen=True)
class OutboxRow:
    part: str
    event_type: str
    event_id: str
    created_at: str
    published_at: str | None
    attempts: int
    last_error: str | None
    routing_key: str = ""
    body: bytes = b""

    @property
    def unsent(self) -> bool:
        return self.published_at is None


def _both(statement: str) -> str:
    """``statement`` (with ``{table}``) over the outbox and the saga history."""
    return " UNION ALL ".join(statement.format(table=t) for t in ("outbox", "saga_history"))


def _read_outboxes(
    runtime: Runtime, statement: str
) -> tuple[list[tuple[str, list[list[str | None]]]], list[str]]:
    """``statement`` on every service's database: (service, rows) for each
    that answered, and one line for each that could not be read."""
    answers: list[tuple[str, list[list[str | None]]]] = []
    problems: list[str] = []
    for service in SERVICES:
        try:
            answers.append((service.name, runtime.query(service.name, statement)))
        except ShopError as exc:
            problems.append(exc.message)
    return answers, problems


def outbox_events(runtime: Runtime, since_s: float) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(routing key, body) of every event the services committed in the
    last ``since_s`` seconds, oldest first: the bus's history, rebuilt
    from the outboxes (published or not); and one line for each database
    that could not be read."""
    answers, problems = _read_outboxes(
        runtime,
        _both(
            "SELECT created_at, routing_key, convert_from(body, 'UTF8') FROM {table}"
            f" WHERE created_at > now() - interval '{float(since_s):.3f} seconds'"
        ),
    )
    found = [
        (event_time(created or "", body or ""), key or "", (body or "").encode())
        for _, rows in answers
        for created, key, body in rows
    ]
    found.sort(key=lambda row: row[0])
    return [(key, body) for _, key, body in found], problems


def event_time(created_at: str, body: str) -> datetime:
    """When the event happened, as it says itself (its ``time``, which trace
    prints); else when its row was written. The row's created_at is the
    start of the writing transaction, so two services' rows can be in
    another order than their events."""
    for text in (_said_time(body), created_at):
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            continue
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def _said_time(body: str) -> str:
    try:
        said = json.loads(body).get("time")
    except (ValueError, AttributeError):
        return ""
    return said if isinstance(said, str) else ""


def whole_id(runtime: Runtime, start: str) -> str:
    """The one saga id in the outboxes that begins with ``start`` (the
    8 characters trace and the TUI show), or ``start`` itself when none
    does; UsageError when more than one does."""
    if not _PREFIX.fullmatch(start):
        raise UsageError(f"{start!r} is not the start of an order id")
    start = start.lower()
    answers, _ = _read_outboxes(
        runtime,
        "SELECT DISTINCT correlation_id FROM ("
        + _both(
            f"SELECT correlation_id FROM {{table}} WHERE correlation_id LIKE '{start.lower()}%'"
        )
        + f") AS found LIMIT {_SHOWN + 1}",
    )
    found = sorted({row[0] for _, rows in answers for row in rows if row[0]})
    return pick(start, found)


def pick(start: str, found: list[str]) -> str:
    if len(found) > 1:
        more = len(found) > _SHOWN
        raise UsageError(
            f"{start} is the start of {'more than ' if more else ''}{min(len(found), _SHOWN)}"
            " order ids: " + ", ".join(found[:_SHOWN]),
            hint="give more of the id",
        )
    return found[0] if found else start


def outbox_rows(runtime: Runtime, correlation_id: str) -> tuple[list[OutboxRow], list[str]]:
    """The rows of ``correlation_id`` in each service's outbox, oldest
    first, and one line for each database that could not be read."""
    if not _SAFE_ID.fullmatch(correlation_id):
        raise UsageError(f"{correlation_id!r} is not an order or correlation id")
    answers, problems = _read_outboxes(
        runtime,
        "SELECT event_type, event_id, created_at, published_at, publish_attempts,"
        " last_error, routing_key, convert_from(body, 'UTF8') FROM outbox"
        f" WHERE correlation_id = '{correlation_id}'"
        " UNION ALL SELECT event_type, event_id, created_at, published_at, 1, NULL,"
        " routing_key, convert_from(body, 'UTF8') FROM saga_history"
        f" WHERE correlation_id = '{correlation_id}'",
    )
    rows = [
        OutboxRow(
            service,
            event_type or "",
            event_id or "",
            created or "",
            published,
            int(attempts or 0),
            error,
            key or "",
            (body or "").encode(),
        )
        for service, found in answers
        for event_type, event_id, created, published, attempts, error, key, body in found
    ]
    rows.sort(key=lambda r: r.created_at)
    return rows, problems
