"""The transactional outbox: events commit with the state change that caused
them, and a relay publishes them with broker confirms afterwards.

The relay claims rows with a lease (``FOR UPDATE SKIP LOCKED`` inside one
UPDATE), publishes outside any transaction, then marks them sent. Two relays
never hold the same row at once; a relay that dies leaves its claim to expire
and another takes the rows over. A crash between confirm and mark publishes a
row twice; consumers' inboxes absorb that (at-least-once by design).

The fast path: a transaction of a process whose relay runs writes its rows
already claimed by that relay (``claimed_until`` a lease ahead) and hands
them over at commit; the relay publishes them at once and marks a whole
batch sent in one statement. No claim query, no NOTIFY, no waking of other
relays: a hop costs a few round trips fewer (docs/performance-journal.md). If the
process dies before it publishes, the lease expires and any relay's sweep
takes the rows, as for a claim."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import tracing
from .broker import Broker, PublishFailed
from .db import Pooled, libpq_dsn
from .events import Envelope, EventData, new_event
from .faults import FaultSwitchboard
from .metrics import Metrics
from .schema import OUTBOX_CHANNEL
from .settings import ServiceSettings

log = logging.getLogger(__name__)

# psycopg's own SQL, run on the driver's connection (services.common.db.Driver):
# the statements of every hop. The table is services.common.schema.outbox.
_NOTIFY = f"SELECT pg_notify('{OUTBOX_CHANNEL}', '')"
_COLUMNS = "event_id, event_type, routing_key, correlation_id, body"


@functools.cache
def _insert_sql(rows: int, claimed: bool) -> str:
    """One INSERT of ``rows`` rows (one round trip), claimed or not."""
    if claimed:
        row = "(%s, %s, %s, %s, %s, now() + make_interval(secs => %s))"
        return f"INSERT INTO outbox ({_COLUMNS}, claimed_until) VALUES " + ", ".join([row] * rows)
    return f"INSERT INTO outbox ({_COLUMNS}) VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * rows)


class Handover(Protocol):
    """Where a committed transaction's rows go to be published at once (the
    relay of the process)."""

    @property
    def claim_s(self) -> float | None:
        """The lease to write rows with, or None to leave them to a sweep."""

    def hand_over(self, rows: Sequence[OutboxRow]) -> None: ...


class UnitOfWork:
    """One database transaction and the events it will publish.

    Handlers and request handlers change state through ``db`` (prepared
    statements on the driver, the hot path) or ``conn`` (SQLAlchemy's
    connection, made on the same one when asked for) and call ``emit``; the
    events are written to the outbox in the same transaction."""

    def __init__(self, pooled: Pooled, source: str, cause: Envelope[Any] | None) -> None:
        self.pooled = pooled
        # the connection's psycopg side: the inbox and outbox rows, the
        # handlers' prepared statements
        self.db = pooled.db
        self.source = source
        self.cause = cause
        self.emitted: list[Envelope[Any]] = []
        self.rows: list[OutboxRow] = []
        self.committed: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction has committed (never on a rollback)."""
        self.committed.append(callback)

    @property
    def conn(self) -> AsyncConnection:
        """SQLAlchemy's connection, in the same transaction."""
        return self.pooled.conn

    def emit(
        self,
        data: EventData,
        *,
        correlation_id: str | uuid.UUID | None = None,
        subject: str | None = None,
        saga_mode: str | None = None,
        saga_deadline: datetime | None = None,
    ) -> Envelope[Any]:
        """Queue an event for the outbox; it inherits the saga id and its
        mode from the cause."""
        event = new_event(
            data,
            source=self.source,
            correlation_id=correlation_id,
            cause=self.cause,
            subject=subject,
            saga_mode=saga_mode,
            saga_deadline=saga_deadline,
        )
        self.emitted.append(event)
        return event

    async def commit(self, claim_s: float | None = None) -> None:
        """Write the emitted events to the outbox and commit, the last (or
        only) INSERT in the same round trip as the COMMIT. With ``claim_s``
        the rows are claimed for that long by the relay they will be handed
        to; without, the commit NOTIFYs every relay on this database."""
        if not self.emitted:
            await self.pooled.commit()
            return
        now = datetime.now(UTC)
        self.rows = [
            OutboxRow(0, e.id, e.type, e.routing_key, e.correlationid, e.to_json(), now)
            for e in self.emitted
        ]
        # A statement takes at most 65,535 parameters: 1,000 rows a statement.
        chunks = [self.rows[start : start + 1000] for start in range(0, len(self.rows), 1000)]
        for number, chunk in enumerate(chunks, start=1):
            params: list[Any] = []
            for row in chunk:
                params += (row.event_id, row.event_type, row.routing_key, row.correlation_id)
                params.append(row.body)
                if claim_s is not None:
                    params.append(claim_s)
            sql = _insert_sql(len(chunk), claim_s is not None)
            if number < len(chunks):
                await self.db.execute(sql, params)
            elif claim_s is not None:
                await self.pooled.commit(sql, params)
            else:
                # Delivered at commit, to relays in every process on this database.
                await self.pooled.commit(f"{sql}; {_NOTIFY}", params)


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine,
    source: str,
    *,
    cause: Envelope[Any] | None = None,
    on_commit: Callable[[], None] | None = None,
    relay: Handover | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Open a transaction; commit it with its outbox rows when the block ends
    without error, roll everything back otherwise (no row, no message).
    With a running ``relay`` the rows are handed to it at commit."""
    claim_s = relay.claim_s if relay is not None else None
    pooled = await Pooled.take(engine)
    try:
        uow = UnitOfWork(pooled, source, cause)
        yield uow
        await uow.commit(claim_s)
    finally:
        await pooled.release()
    for callback in uow.committed:
        callback()
    if not uow.emitted:
        return
    if claim_s is not None and relay is not None:
        relay.hand_over(uow.rows)
    if on_commit is not None:
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
# psycopg's SQL (services.common.db.Driver): a batch of every hop marks its rows.
_MARK_SENT = (
    "UPDATE outbox SET published_at = now(), claimed_until = NULL, last_error = NULL "
    "WHERE event_id = ANY(%s)"
)
_MARK_FAILED = (
    "UPDATE outbox SET claimed_until = now() + make_interval(secs => %s), "
    "last_error = %s WHERE event_id = %s"
)
_RELEASE = sa.text(
    "UPDATE outbox SET claimed_until = NULL WHERE event_id = ANY(:ids) AND published_at IS NULL"
)


class OutboxRelay:
    """Publishes committed outbox rows: at once the rows its own process's
    transactions hand over (``hand_over``), and by sweeping (claim, publish,
    mark) rows no relay holds: when woken by ``wake()`` or a NOTIFY (a
    transaction without a relay, any process), on every (re)connect, and every
    ``outbox_poll_interval_s`` in case all were missed (a process that died
    holding a claim)."""

    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        settings: ServiceSettings,
        metrics: Metrics | None = None,
        faults: FaultSwitchboard | None = None,
    ) -> None:
        self.engine = engine
        # One statement each, atomic on its own: no BEGIN and COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self.faults = faults
        self._wake = asyncio.Event()
        self._sweep = False  # a sweep was asked for
        self._handed: list[OutboxRow] = []
        # published and confirmed, not yet marked sent; marked together once
        # the oldest has waited ``outbox_mark_delay_s`` (``_mark_due``)
        self._unmarked: list[uuid.UUID] = []
        self._mark_due: float | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self.listen_sessions = 0  # LISTEN connections made so far (1 + reconnects)

    def wake(self) -> None:
        """Sweep now."""
        self._sweep = True
        self._wake.set()

    @property
    def claim_s(self) -> float | None:
        """Transactions write rows claimed this long when this relay will
        take them over; None while it is not running."""
        return self.settings.outbox_lease_s if self.running and not self._stopping else None

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        """Rows just committed, claimed for this relay: publish them now."""
        self._handed.extend(rows)
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._sweep = True
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            asyncio.create_task(self._listen(), name="outbox-listen"),
        ]

    async def stop(self) -> None:
        """Stop after the batch in hand, publishing what was handed over
        until now (for up to the publish timeout); unsent rows stay for the
        next start (handed-over ones released to it)."""
        self._stopping = True
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        grace = self.settings.publish_timeout_s + 1
        for task in tasks:
            if task.get_name() != "outbox-relay":
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, grace)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(grace):
                while self._handed:
                    await self.publish_handed()
                if self._unmarked:
                    await self._mark([], [])
        if self._handed:
            ids = [row.event_id for row in self._handed]
            self._handed = []
            with contextlib.suppress(Exception):
                async with self._autocommit.connect() as conn:
                    await conn.execute(_RELEASE, {"ids": ids})

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self._stopping:
            self._wake.clear()
            try:
                if self._handed:
                    await self.publish_handed(defer_mark=True)
                if self._mark_due is not None and loop.time() >= self._mark_due:
                    await self._mark([], [])
                if self._sweep or loop.time() >= next_sweep:
                    self._sweep = False
                    next_sweep = loop.time() + self.settings.outbox_poll_interval_s
                    if await self.drain_once() >= self.settings.outbox_batch_size:
                        self._sweep = True  # more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(self.settings.outbox_failure_backoff_s)
            if self._handed or self._sweep:
                continue
            wake_at = next_sweep if self._mark_due is None else min(next_sweep, self._mark_due)
            # asyncio.timeout, not wait_for: no task made for every wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake_at):
                    await self._wake.wait()

    async def publish_handed(self, *, defer_mark: bool = False) -> int:
        """Publish the rows handed over since the last call (a batch at most).
        ``defer_mark``: the confirmed rows are marked sent with later ones,
        once the oldest has waited ``outbox_mark_delay_s``."""
        batch = self._handed[: self.settings.outbox_batch_size]
        del self._handed[: len(batch)]
        return await self._publish_batch(batch, defer_mark=defer_mark)

    async def drain_once(self) -> int:
        """Claim one batch of rows no relay holds, publish it, mark what was
        confirmed. Returns the number of rows published."""
        rows = await self._claim()
        if not rows:
            return 0
        return await self._publish_batch(rows)

    async def _publish_batch(self, rows: list[OutboxRow], *, defer_mark: bool = False) -> int:
        results: list[BaseException | None]
        if len(rows) == 1:  # the usual hand-over: no task to gather one publish
            results = [None]
            try:
                await self._publish(rows[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                results = [exc]
        else:
            results = await asyncio.gather(
                *(self._publish(row) for row in rows), return_exceptions=True
            )
        sent = [row for row, result in zip(rows, results, strict=True) if result is None]
        failed = [
            (row, result)
            for row, result in zip(rows, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if not (defer_mark and not failed and self._defer(sent)):
            await self._mark(sent, failed)
        if failed:
            log.warning(
                "outbox: %d of %d rows not confirmed; kept for retry (first: %s)",
                len(failed),
                len(rows),
                failed[0][1],
            )
        self._count(sent, len(failed))
        return len(sent)

    def _defer(self, sent: list[OutboxRow]) -> bool:
        """Keep ``sent`` to be marked with later rows; False when they are to
        be marked now (no delay set, or a batch's worth waiting). The rows
        stay claimed by this relay meanwhile (their lease is many times the
        delay), so no sweep takes them; should the process die first, they
        are published again after the lease and the inboxes absorb it."""
        delay = self.settings.outbox_mark_delay_s
        if delay <= 0 or len(self._unmarked) + len(sent) >= self.settings.outbox_batch_size:
            return False
        self._unmarked += [row.event_id for row in sent]
        if self._mark_due is None and self._unmarked:
            self._mark_due = asyncio.get_running_loop().time() + delay
        return True

    async def _mark(
        self, sent: list[OutboxRow], failed: list[tuple[OutboxRow, BaseException]]
    ) -> None:
        """Mark rows sent (with any a failed or deferred mark left) and failed
        ones for a later sweep, in one round trip each."""
        self._mark_due = None
        ids = self._unmarked + [row.event_id for row in sent]
        try:
            async with Pooled.autocommit(self.engine) as db:
                if ids:
                    await db.execute(_MARK_SENT, (ids,))
                for row, error in failed:
                    await db.execute(
                        _MARK_FAILED,
                        (self.settings.outbox_failure_backoff_s, str(error)[:2000], row.event_id),
                    )
        except BaseException:
            # Published, not marked: marked with the next batch or after the
            # delay (or, should this process die first, published again
            # after the lease).
            self._unmarked = ids[-10_000:]
            if ids:
                delay = self.settings.outbox_mark_delay_s
                self._mark_due = asyncio.get_running_loop().time() + delay
            raise
        self._unmarked = []

    async def _claim(self) -> list[OutboxRow]:
        async with self._autocommit.connect() as conn:
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
            if self.faults
            and self.faults.publishes_twice(
                row.event_type, row.correlation_id, lambda: orjson.loads(row.body).get("data") or {}
            )
            else 1
        )
        message_id = str(row.event_id)
        with tracing.publishing(
            row.routing_key,
            self.broker.settings.events_exchange,
            message_id,
            tracing.traceparent_in(row.body),
        ) as headers:
            for _ in range(copies):
                await self.broker.publish_event(
                    row.body,
                    row.routing_key,
                    message_id=message_id,
                    event_type=row.event_type,
                    correlation_id=row.correlation_id,
                    headers=headers,
                )

    def _count(self, sent: list[OutboxRow], failures: int) -> None:
        if self.metrics is None:
            return
        now = time.time()
        for row in sent:
            self.metrics.published(row.event_type)
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
                    self.wake()
                    async for _ in conn.notifies():
                        self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                log.warning("outbox listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(self.settings.outbox_failure_backoff_s)


__all__ = ["Handover", "OutboxRelay", "PublishFailed", "UnitOfWork", "unit_of_work"]
