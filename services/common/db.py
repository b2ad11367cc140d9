"""The async database layer: one pooled engine per service on psycopg 3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import await_only, greenlet_spawn

from . import tracing
from .settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """A pooled engine whose connections cannot hang forever: statement and
    idle-in-transaction timeouts are set per session, and a connection idle
    for ``db_ping_after_idle_s`` is pinged before use, a dead one replaced, so
    a PostgreSQL restart heals itself. A connection in steady use is not
    pinged: that round trip on every checkout cost about 5 % of a busy
    service's time (docs/performance-journal.md); should it have died meanwhile, the
    statement fails as transient (a consumer retries it without spending an
    attempt, a request answers 503) and the pool drops its connections."""
    options = (
        f"-c statement_timeout={settings.db_statement_timeout_ms} "
        f"-c idle_in_transaction_session_timeout={settings.db_idle_in_transaction_timeout_ms}"
    )
    engine = create_async_engine(
        async_url(settings.database_url),
        # Every connection the process may open is kept once opened (no
        # overflow): SQLAlchemy closes an overflow connection that comes back
        # to a pool already holding ``pool_size`` idle ones, and under a burst
        # of requests that made a new PostgreSQL backend (a fork, the login,
        # cold caches) for a good part of the transactions: a fifth of the
        # machine's CPU in a flood (docs/performance-journal.md). The consumer's
        # handlers take at most ``db_pool_size`` of them (ConsumerRunner), so
        # ``db_max_overflow`` stay for requests and the relay.
        pool_size=settings.db_pool_size + settings.db_max_overflow,
        max_overflow=0,
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


class Rider:
    """A statement that goes out in the same round trip as the next one, in
    front of it and in its transaction (``Driver.ride_with_next``): the
    inbox row of a consumed event. Written twice, with named placeholders
    (for a ``Prepared`` statement's dict) and positional ones (for a list),
    the values in the positional order. ``refused`` turns its own failure
    into the exception to raise (None: raise the failure as it is)."""

    __slots__ = ("named", "positional", "refused", "statements", "values")

    def __init__(
        self,
        named: str,
        positional: str,
        values: dict[str, Any],
        refused: Callable[[psycopg.Error], Exception | None],
        statements: int = 1,
    ) -> None:
        self.named = named
        self.positional = positional
        self.values = values
        self.refused = refused
        self.statements = statements  # results it makes, for the cursor to pass

    @classmethod
    def savepoint(cls, name: str) -> Rider:
        """``SAVEPOINT name`` alone, in front of the next statement."""
        return cls(f"SAVEPOINT {name}", f"SAVEPOINT {name}", {}, lambda _: None)

    def after_savepoint(self, name: str) -> Rider:
        """This rider behind ``SAVEPOINT name``, in the same round trip: the
        claim of one event of a batch, in the savepoint it can be rolled
        back to alone (services.common.batch)."""
        return Rider(
            f"SAVEPOINT {name}; {self.named}",
            f"SAVEPOINT {name}; {self.positional}",
            self.values,
            self.refused,
            self.statements + 1,
        )

    def ahead_of(
        self, params: Sequence[Any] | Mapping[str, Any]
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """This statement in the placeholders of ``params`` (those of the
        statement behind it), and the parameters of both."""
        if isinstance(params, Mapping):
            return self.named, {**self.values, **params}
        return self.positional, [*self.values.values(), *params]


class Driver:
    """The psycopg connection under SQLAlchemy's pool, for the statements
    every message runs: the messaging core's own (the inbox row, the outbox
    rows, marking rows sent) and the handlers' ``Prepared`` ones. SQLAlchemy's
    execution path (its greenlet hand-off, the compiled cache, the result
    wrapper) cost 2.5 times psycopg's own CPU for them (docs/performance-journal.md,
    bench/core_pipeline.py). A failure is raised as the exception SQLAlchemy
    would have raised, with a lost connection invalidated, so callers and
    the pool see no difference. Handlers write their statements in
    SQLAlchemy Core; those of the hot path are ``Prepared`` once and run
    here (``run``)."""

    def __init__(
        self,
        dialect: Dialect,
        driver: psycopg.AsyncConnection[Any],
        invalidate: Callable[[BaseException], Awaitable[None]],
        *,
        begins: bool = False,
    ) -> None:
        self.dialect = dialect
        self.driver = driver
        self._invalidate = invalidate
        # ``begins``: the driver of a unit of work (``Pooled``), whose first
        # statement carries the transaction's BEGIN in its own round trip
        # (psycopg would send BEGIN alone first). psycopg is in autocommit
        # meanwhile (``began_itself``); ``Pooled.release`` puts the
        # connection back out of it.
        self._begins = begins
        self.began_itself = False
        self._rider: Rider | None = None

    def database_name(self) -> str:
        return str(self.driver.info.dbname)

    @classmethod
    async def of(cls, conn: AsyncConnection) -> Driver:
        """The driver under an SQLAlchemy connection, inside its transaction."""
        raw = await conn.get_raw_connection()
        return cls(conn.dialect, _psycopg(raw), conn.invalidate)

    async def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any], *, commit: bool = False
    ) -> psycopg.AsyncCursor[Any]:
        """Run one statement; the cursor holds its rows. ``commit``: the
        transaction commits after it, in the same round trip."""
        begin = self._can_begin()
        try:
            if begin or commit or self._rider is not None:
                return await self._script(sql, params, begin=begin, commit=commit)
            with tracing.statement(sql, self.database_name):
                # a cursor of the driver's own: psycopg's instrumentation
                # would trace it a second time
                return await psycopg.AsyncCursor(self.driver).execute(sql, params)
        except psycopg.Error as exc:
            raise await self._failed(sql, params, exc) from exc

    def ride_with_next(self, rider: Rider) -> None:
        """Send ``rider`` in front of the next statement (or the COMMIT),
        in the same round trip: one round trip less. Should it fail, the
        statement behind it does not run."""
        assert self._rider is None, "one rider at a time"
        self._rider = rider

    @property
    def rider_waiting(self) -> bool:
        return self._rider is not None

    def take_rider(self) -> Rider | None:
        """The waiting rider, no longer waiting (to send it otherwise, or drop it)."""
        rider, self._rider = self._rider, None
        return rider

    async def send_rider(self, *, commit: bool = False) -> None:
        """Send the waiting rider on its own (SQLAlchemy's connection is
        about to send a statement of its own first), or with the COMMIT."""
        if self._rider is not None:
            try:
                await self._script(None, (), begin=self._can_begin(), commit=commit)
            except psycopg.Error as exc:
                raise await self._failed("COMMIT" if commit else "", (), exc) from exc

    async def _script(
        self,
        sql: str | None,
        params: Sequence[Any] | Mapping[str, Any],
        *,
        begin: bool,
        commit: bool,
        row_factory: Any = None,
    ) -> psycopg.AsyncCursor[Any]:
        """The statement with BEGIN and/or the waiting rider before it and/or
        COMMIT after it: bound on the client and sent as one simple-protocol
        query, one round trip. A failing statement stops the rest (no
        COMMIT), as it would on its own; the cursor is left at the
        statement's result."""
        if begin:
            await self.driver.set_autocommit(True)
            self.began_itself = True
        parts = ["BEGIN"] if begin else []
        rider, self._rider = self._rider, None
        skip = len(parts)  # results before the statement's
        if rider is not None:
            ahead, params = rider.ahead_of(params)
            parts.append(ahead)
            skip += rider.statements
        if sql is not None:
            parts.append(sql)
        if commit:
            parts.append("COMMIT")
        script = "; ".join(parts)
        cursor = psycopg.AsyncClientCursor(self.driver, row_factory=row_factory)
        try:
            with tracing.statement(sql or script, self.database_name):
                await cursor.execute(script, params)
        except psycopg.Error as exc:
            refused = rider.refused(exc) if rider is not None else None
            if refused is not None:
                raise refused from exc
            raise
        for _ in range(skip):
            cursor.nextset()  # past BEGIN's and the rider's results, to the statement's
        return cursor

    def _can_begin(self) -> bool:
        """Whether the next statement sends the transaction's BEGIN itself:
        a unit of work's driver, no transaction open, and psycopg would
        open one."""
        driver = self.driver
        return (
            self._begins
            and not self.began_itself
            and not driver.autocommit
            and not driver.closed
            and driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )

    async def end_own_begin(self) -> None:
        """Out of the autocommit its own BEGIN put psycopg in, rolling back
        first what was not committed; raises when the connection cannot."""
        if not self.began_itself:
            return
        if self.driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await self.driver.rollback()
        await self.driver.set_autocommit(False)
        self.began_itself = False

    async def run(self, statement: Prepared, params: Mapping[str, Any] | None = None) -> Rows:
        """Run a prepared SQLAlchemy Core statement on the driver's
        connection, with the parameters SQLAlchemy would have sent; its rows
        (by name and by position) are read at once."""
        sql, values = statement.bind(self.dialect, params or {})
        try:
            begin = self._can_begin()
            if begin or self._rider is not None:
                cursor = await self._script(
                    sql, values, begin=begin, commit=False, row_factory=namedtuple_row
                )
            else:
                cursor = psycopg.AsyncCursor(self.driver, row_factory=namedtuple_row)
                with tracing.statement(sql, self.database_name):
                    await cursor.execute(sql, values)
            rows = await cursor.fetchall() if cursor.description is not None else []
        except psycopg.Error as exc:
            raise await self._failed(sql, values, exc) from exc
        return Rows(rows, cursor.rowcount)

    async def commit(self) -> None:
        if self._rider is not None:
            await self.send_rider(commit=True)
            return
        try:
            await self.driver.commit()
        except psycopg.Error as exc:
            raise await self._failed("COMMIT", (), exc) from exc

    async def _failed(self, sql: str, params: Any, exc: psycopg.Error) -> sa_exc.StatementError:
        lost = self.driver.broken or self.driver.closed
        if lost:
            await self._invalidate(exc)
        return sa_exc.DBAPIError.instance(
            sql, params, exc, psycopg.Error, connection_invalidated=lost
        )


def _psycopg(raw: PoolProxiedConnection) -> psycopg.AsyncConnection[Any]:
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection), "a psycopg engine"
    return driver


class Pooled:
    """A connection of the engine's pool, taken without SQLAlchemy's
    ``Connection`` around it: a unit of work's transaction. Its statements
    run on the driver (``db``); SQLAlchemy's connection (``conn``) is made
    on the same pooled connection only when code asks for it, and then it
    commits and gives the connection back. SQLAlchemy's connection, begin,
    commit and close cost a greenlet hand-off each, about 200 us a
    transaction (docs/performance-journal.md). Given back (``release``) by the
    pool's own check-in, which rolls back whatever was not committed and
    drops a connection that cannot."""

    def __init__(self, engine: AsyncEngine, raw: PoolProxiedConnection) -> None:
        self.engine = engine
        self._raw: PoolProxiedConnection | None = raw
        self._conn: AsyncConnection | None = None
        self.db = Driver(engine.dialect, _psycopg(raw), self._invalidate, begins=True)

    @classmethod
    async def take(cls, engine: AsyncEngine) -> Pooled:
        return cls(engine, await engine.raw_connection())

    @classmethod
    @asynccontextmanager
    async def autocommit(cls, engine: AsyncEngine) -> AsyncIterator[Driver]:
        """A pooled connection whose every statement commits on its own (one
        round trip, no BEGIN and COMMIT around it), given back to the pool
        out of autocommit again, or dropped when that cannot be."""
        pooled = await cls.take(engine)
        try:
            driver = pooled.db.driver
            await driver.set_autocommit(True)
            try:
                yield pooled.db
            finally:
                # A lost connection was invalidated by the failing statement
                # (a second invalidation only warns); the pool drops it.
                if not (driver.closed or driver.broken):
                    try:
                        await driver.set_autocommit(False)
                    except psycopg.Error as exc:
                        await pooled._invalidate(exc)
        finally:
            await pooled.release()

    @property
    def conn(self) -> AsyncConnection:
        """SQLAlchemy's connection on this pooled connection, in the same
        transaction (made on first use)."""
        if self._conn is None:
            assert self._raw is not None, "released"
            sync = Connection(self.engine.sync_engine, self._raw)
            # A waiting rider (a consumed event's inbox row) goes before
            # SQLAlchemy's next statement, in the greenlet that runs it: in
            # a batch, each event's claim (and savepoint) before its
            # handler's statements, whichever connection they use.
            event.listen(sync, "before_cursor_execute", self._rider_first)
            self._conn = AsyncConnection(self.engine, sync)
        return self._conn

    def _rider_first(self, *_: Any) -> None:
        if self.db.rider_waiting:
            await_only(self.db.send_rider())

    async def commit(
        self, last: str | None = None, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> None:
        """Commit; with ``last``, that statement runs first, in the same
        round trip as the COMMIT."""
        if last is not None:
            await self.db.execute(last, params, commit=True)
        if self._conn is not None and self._conn.in_transaction():
            # SQLAlchemy's transaction is the same one: it ends here (its
            # COMMIT finds nothing left to commit when ``last`` sent one)
            await self._conn.commit()
        elif last is None:
            # also when SQLAlchemy's connection was made but never began:
            # its commit would leave the driver's statements uncommitted
            await self.db.commit()

    async def release(self) -> None:
        """Give the connection back to the pool, rolling back anything not
        committed; runs to its end even when the caller is cancelled."""
        raw, self._raw = self._raw, None
        if raw is None:
            return
        task = asyncio.ensure_future(self._give_back(raw))
        cancelled: BaseException | None = None
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError as exc:
                cancelled = exc
        if cancelled is not None:
            raise cancelled
        task.result()

    async def _give_back(self, raw: PoolProxiedConnection) -> None:
        driver = self.db.driver
        if self.db.began_itself and not (driver.closed or driver.broken):
            try:
                await self.db.end_own_begin()
            except psycopg.Error as exc:
                # cannot be put back as the pool hands connections out
                if self._conn is not None:
                    await self._conn.invalidate(exc)
                else:
                    await greenlet_spawn(raw.invalidate, exc)
        if self._conn is not None:
            await self._conn.close()
        else:
            await greenlet_spawn(raw.close)

    async def _invalidate(self, exc: BaseException) -> None:
        if self._conn is not None:
            await self._conn.invalidate(exc)
        elif self._raw is not None:
            await greenlet_spawn(self._raw.invalidate, exc)


class Rows:
    """A statement's rows, read: the part of SQLAlchemy's ``Result`` the
    handlers use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Any:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any | None:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise sa_exc.NoResultFound(f"expected one row, got {len(self._rows)}")
        return self._rows[0][0]


class Prepared:
    """An SQLAlchemy Core statement compiled once for the service's dialect,
    to run on the driver's connection (``Driver.run``) without SQLAlchemy's
    execution path: the hot path's statements, which every message runs
    (docs/performance-journal.md). The parameters go through the same bind
    processors SQLAlchemy applies (JSON, enums), so the statement sees the
    same values. A statement needing what only SQLAlchemy's execution does
    (Python-side column defaults, expanding IN parameters, result
    processors) is refused when first compiled. ``statement`` stays
    runnable through SQLAlchemy."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: tuple[Dialect, str, list[_Bind]] | None = None

    def bind(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SQL and its parameters for ``params`` (by bind key)."""
        compiled = self._compiled
        if compiled is None or compiled[0] is not dialect:
            compiled = self._compiled = (dialect, *_compile(self.statement, dialect))
        values: dict[str, Any] = {}
        for name, key, fixed, process in compiled[2]:
            value = params[key] if key is not None else fixed
            values[name] = process(value) if process is not None else value
        return compiled[1], values


# (name in the SQL, key the caller passes or None for a fixed value, the
# fixed value, the bind processor)
_Bind = tuple[str, str | None, Any, Callable[[Any], Any] | None]


def _compile(statement: Executable, dialect: Dialect) -> tuple[str, list[_Bind]]:
    compiled: Any = cast(Any, statement).compile(dialect=dialect)
    if compiled.positional or compiled.insert_prefetch or compiled.update_prefetch:
        raise TypeError(f"not preparable (positional or Python-side defaults): {compiled}")
    if compiled.literal_execute_params:
        raise TypeError(f"not preparable (literal_execute parameters): {compiled}")
    for column in getattr(statement, "exported_columns", ()):
        if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
            raise TypeError(f"not preparable ({column} needs a result processor): {compiled}")
    sql: str = compiled.string
    binds: list[_Bind] = []
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind in compiled.post_compile_params:
            # A fixed IN list (``status.in_(WAITING)``): one parameter each.
            if bind.required or bind.expanding is False:
                raise TypeError(f"not preparable (an IN list passed at run time): {compiled}")
            names = [f"{name}_{i}" for i in range(1, len(bind.effective_value) + 1)]
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join(f"%({n})s" for n in names))
            binds += [
                (n, None, v, process) for n, v in zip(names, bind.effective_value, strict=True)
            ]
        elif bind.required:
            binds.append((name, bind.key, None, process))
        else:
            binds.append((name, None, bind.effective_value, process))
    if "__[POSTCOMPILE_" in sql:
        raise TypeError(f"not preparable (a parameter left to expand): {sql}")
    return sql, binds
