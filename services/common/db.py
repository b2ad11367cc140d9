"""The async database layer: one pooled engine per service on psycopg 3."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """A pooled engine whose connections cannot hang forever: statement and
    idle-in-transaction timeouts are set per session, and a connection idle
    for ``db_ping_after_idle_s`` is pinged before use, a dead one replaced, so
    a PostgreSQL restart heals itself. A connection in steady use is not
    pinged: that round trip on every checkout cost about 5 % of a busy
    service's time (docs/performance.md); should it have died meanwhile, the
    statement fails as transient (a consumer retries it without spending an
    attempt, a request answers 503) and the pool drops its connections."""
    options = (
        f"-c statement_timeout={settings.db_statement_timeout_ms} "
        f"-c idle_in_transaction_session_timeout={settings.db_idle_in_transaction_timeout_ms}"
    )
    engine = create_async_engine(
        async_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=settings.db_pre_ping and settings.db_ping_after_idle_s == 0,
        pool_recycle=1800,
        connect_args={"options": options, "application_name": settings.service_name},
    )
    if settings.db_pre_ping and settings.db_ping_after_idle_s > 0:
        ping_after_idle(engine, settings.db_ping_after_idle_s)
    return engine


def ping_after_idle(engine: AsyncEngine, idle_s: float) -> None:
    """SQLAlchemy's pre-ping, for connections idle ``idle_s`` or more only
    (the pool's documented custom pessimistic check: a DisconnectionError at
    checkout makes it replace the connection and try again)."""
    pool_events: Any = engine.sync_engine.pool

    @event.listens_for(pool_events, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return  # new, or in steady use
        try:
            # the dialect's own ping: in autocommit, so it leaves no transaction open
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa_exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def async_url(url: str) -> str:
    """The SQLAlchemy URL with the psycopg 3 driver, whatever the caller wrote."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_dsn(url: str) -> str:
    """A plain libpq URL (for psycopg used directly, e.g. LISTEN)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Driver:
    """The psycopg connection under an SQLAlchemy one, for the messaging
    core's own statements (the inbox row, the outbox rows, marking rows
    sent): every message runs them, and SQLAlchemy's execution path (its
    greenlet hand-off, the compiled cache, the result wrapper) cost 2.5 times
    psycopg's own CPU for them (docs/performance.md, bench/core_pipeline.py).
    They run inside the transaction SQLAlchemy began, and a failure is
    raised as the SQLAlchemy exception SQLAlchemy would have raised, with a
    lost connection invalidated, so callers and the pool see no difference.
    Handlers keep SQLAlchemy Core."""

    def __init__(self, conn: AsyncConnection, driver: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.driver = driver

    @classmethod
    async def of(cls, conn: AsyncConnection) -> Driver:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.AsyncConnection), "a psycopg engine"
        return cls(conn, driver)

    async def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any]
    ) -> psycopg.AsyncCursor[Any]:
        """Run one statement; the cursor holds its rows."""
        try:
            return await self.driver.execute(sql, params)
        except psycopg.Error as exc:
            lost = self.driver.broken or self.driver.closed
            if lost:
                await self.conn.invalidate(exc)
            raise sa_exc.DBAPIError.instance(
                sql, params, exc, psycopg.Error, connection_invalidated=lost
            ) from exc
