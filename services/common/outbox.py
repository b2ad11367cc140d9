"""The transactional outbox: events commit with the state change that caused
them, and a relay publishes them with broker confirms afterwards.

The relay claims rows with a lease (``FOR UPDATE SKIP LOCKED`` inside one
UPDATE), publishes outside any transaction, then marks them sent. Two relays
never hold the same row at once; a relay that dies leaves its claim to expire
and another takes the rows over. A crash between confirm and mark publishes a
row twice; consumers' inboxes absorb that (at-least-once by design)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .broker import Broker, PublishFailed
from .db import libpq_dsn
from .events import Envelope, EventData, new_event
from .faults import FaultSwitchboard
from .metrics import Metrics
from .schema import OUTBOX_CHANNEL, outbox
from .settings import ServiceSettings

log = logging.getLogger(__name__)

_NOTIFY = sa.text(f"SELECT pg_notify('{OUTBOX_CHANNEL}', '')")


class UnitOfWork:
    """One database transaction and the events it will publish.

    Handlers and request handlers change state through ``conn`` and call
    ``emit``; the events are written to the outbox in the same transaction."""

    def __init__(self, conn: AsyncConnection, source: str, cause: Envelope[Any] | None) -> None:
        self.conn = conn
        self.source = source
        self.cause = cause
        self.emitted: list[Envelope[Any]] = []

    def emit(
        self,
        data: EventData,
        *,
        correlation_id: str | uuid.UUID | None = None,
        subject: str | None = None,
    ) -> Envelope[Any]:
        """Queue an event for the outbox; it inherits the saga id from the cause."""
        event = new_event(
            data,
            source=self.source,
            correlation_id=correlation_id,
            cause=self.cause,
            subject=subject,
        )
        self.emitted.append(event)
        return event

    async def flush(self) -> None:
        if not self.emitted:
            return
        await self.conn.execute(
            outbox.insert(),
            [
                {
                    "event_id": e.id,
                    "event_type": e.type,
                    "routing_key": e.routing_key,
                    "correlation_id": e.correlationid,
                    "body": e.to_json(),
                }
                for e in self.emitted
            ],
        )
        # Delivered at commit, to relays in every process on this database.
        await self.conn.execute(_NOTIFY)


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine,
    source: str,
    *,
    cause: Envelope[Any] | None = None,
    on_commit: Callable[[], None] | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Open a transaction; commit it with its outbox rows when the block ends
    without error, roll everything back otherwise (no row, no message)."""
    async with engine.begin() as conn:
        uow = UnitOfWork(conn, source, cause)
        yield uow
        await uow.flush()
    if uow.emitted and on_commit is not None:
        on_commit()


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: uuid.UUID
    event_type: str
    routing_key: str
    correlation_id: str
    body: bytes
    created_at: datetime


_CLAIM = sa.text(
    """
    UPDATE outbox
       SET claimed_until = now() + make_interval(secs => :lease),
           publish_attempts = publish_attempts + 1
     WHERE id IN (
           SELECT id FROM outbox
            WHERE published_at IS NULL
              AND (claimed_until IS NULL OR claimed_until < now())
            ORDER BY id
            LIMIT :limit
              FOR UPDATE SKIP LOCKED)
    RETURNING id, event_id, event_type, routing_key, correlation_id, body, created_at
    """
)
_MARK_SENT = sa.text(
    "UPDATE outbox SET published_at = now(), claimed_until = NULL, last_error = NULL "
    "WHERE id = ANY(:ids)"
)
_MARK_FAILED = sa.text(
    "UPDATE outbox SET claimed_until = now() + make_interval(secs => :backoff), "
    "last_error = :error WHERE id = :id"
)


class OutboxRelay:
    """Publishes committed outbox rows. Woken at once by ``wake()`` (same
    process) or a NOTIFY (any process), and sweeps every
    ``outbox_poll_interval_s`` in case both were missed."""

    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        settings: ServiceSettings,
        metrics: Metrics | None = None,
        faults: FaultSwitchboard | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self.faults = faults
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self.listen_sessions = 0  # LISTEN connections made so far (1 + reconnects)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            asyncio.create_task(self._listen(), name="outbox-listen"),
        ]

    async def stop(self) -> None:
        """Stop after the batch in hand; unsent rows stay for the next start."""
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                published = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay sweep failed; retrying")
                published = 0
                await asyncio.sleep(self.settings.outbox_failure_backoff_s)
            if published >= self.settings.outbox_batch_size:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_interval_s)

    async def drain_once(self) -> int:
        """Claim one batch, publish it, mark what was confirmed. Returns the
        number of rows published."""
        rows = await self._claim()
        if not rows:
            return 0
        results = await asyncio.gather(
            *(self._publish(row) for row in rows), return_exceptions=True
        )
        sent = [row for row, result in zip(rows, results, strict=True) if result is None]
        failed = [
            (row, result)
            for row, result in zip(rows, results, strict=True)
            if isinstance(result, BaseException)
        ]
        async with self.engine.begin() as conn:
            if sent:
                await conn.execute(_MARK_SENT, {"ids": [row.id for row in sent]})
            for row, error in failed:
                await conn.execute(
                    _MARK_FAILED,
                    {
                        "id": row.id,
                        "error": str(error)[:2000],
                        "backoff": self.settings.outbox_failure_backoff_s,
                    },
                )
        if failed:
            log.warning(
                "outbox: %d of %d rows not confirmed; kept for retry (first: %s)",
                len(failed),
                len(rows),
                failed[0][1],
            )
        self._count(sent, len(failed))
        return len(sent)

    async def _claim(self) -> list[OutboxRow]:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                _CLAIM,
                {"lease": self.settings.outbox_lease_s, "limit": self.settings.outbox_batch_size},
            )
            rows = [OutboxRow(**row._mapping) for row in result]
        rows.sort(key=lambda r: r.id)
        return rows

    async def _publish(self, row: OutboxRow) -> None:
        copies = (
            2
            if self.faults and self.faults.publishes_twice(row.event_type, row.correlation_id)
            else 1
        )
        for _ in range(copies):
            await self.broker.publish_event(
                row.body,
                row.routing_key,
                message_id=str(row.event_id),
                event_type=row.event_type,
                correlation_id=row.correlation_id,
            )

    def _count(self, sent: list[OutboxRow], failures: int) -> None:
        if self.metrics is None:
            return
        now = time.time()
        for row in sent:
            self.metrics.events_published(event_type=row.event_type).inc()
            self.metrics.outbox_lag.observe(max(0.0, now - row.created_at.timestamp()))
        if failures:
            self.metrics.publish_failures.inc(failures)

    async def _listen(self) -> None:
        """LISTEN for commits from any process on this database; reconnects
        after a PostgreSQL restart and sweeps once on every (re)connect."""
        dsn = libpq_dsn(self.settings.database_url)
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    self.listen_sessions += 1
                    self.listening.set()
                    self._wake.set()
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                log.warning("outbox listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(self.settings.outbox_failure_backoff_s)


__all__ = ["OutboxRelay", "PublishFailed", "UnitOfWork", "unit_of_work"]
