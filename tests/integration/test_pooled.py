"""services.common.db.Pooled: connections taken from the pool without
SQLAlchemy's Connection go back to it as the pool expects them."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa

from services.common.db import Pooled, Prepared, create_engine
from services.common.events import new_event
from services.common.inbox import AlreadyHandled, claim_handled
from services.common.outbox import unit_of_work
from tests.integration.test_outbox import Keeps, completed


class Boom(Exception):
    pass


async def test_a_connection_used_in_autocommit_goes_back_transactional(settings):
    """The relay marks rows sent in autocommit; the same pooled connection
    then serves a unit of work, whose rollback must still undo its rows."""
    settings = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE marks (n int)"))
        async with Pooled.autocommit(engine) as db:
            await db.execute("INSERT INTO marks VALUES (1)", ())
        with pytest.raises(Boom):
            async with unit_of_work(engine, "test") as uow:  # the one pooled connection
                await uow.db.execute("INSERT INTO marks VALUES (2)", ())
                raise Boom
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM marks ORDER BY n"))).all()
        assert [n for (n,) in rows] == [1]  # committed on its own; 2 rolled back
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_work_on_the_driver_commits_though_sqlalchemys_connection_was_only_made(settings):
    """``uow.conn`` made but never used: SQLAlchemy's connection has no
    transaction of its own to commit, yet the driver's statements must be."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE kept (n int)"))
        async with unit_of_work(engine, "test") as uow:
            await uow.db.execute("INSERT INTO kept VALUES (1)", ())
            assert uow.conn is not None  # made, not used
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM kept"))).scalar() == 1
    finally:
        await engine.dispose()


@contextmanager
def protocol_trace() -> Iterator[Callable[[psycopg.AsyncConnection], list[str]]]:
    """libpq's trace of the messages on a connection, as lines: call the
    value with the connection to start; the lines are there at the end."""
    with tempfile.TemporaryFile("w+") as out:
        lines: list[str] = []
        traced: list[psycopg.AsyncConnection] = []

        def start(driver: psycopg.AsyncConnection) -> list[str]:
            driver.pgconn.trace(out.fileno())
            driver.pgconn.set_trace_flags(
                psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
            )
            traced.append(driver)
            return lines

        try:
            yield start
        finally:
            for driver in traced:
                driver.pgconn.untrace()
            out.seek(0)
            lines += out.read().splitlines()


def round_trips(lines: list[str]) -> int:
    """Each round trip ends with the server's ReadyForQuery."""
    return sum(1 for line in lines if "\tReadyForQuery" in line)


@pytest.mark.parametrize("relay", ["handed over", "notified"])
async def test_a_consumed_event_begins_with_its_inbox_row_and_commits_with_its_outbox_rows(
    settings, relay
):
    """The handler's statement and the outbox row: two round trips, BEGIN
    and the inbox row riding with the first statement and COMMIT with the
    last."""
    engine = create_engine(settings)
    keeps = Keeps() if relay == "handed over" else None
    try:
        cause = new_event(completed(), source="test", correlation_id=uuid.uuid4())
        with protocol_trace() as start:
            async with unit_of_work(engine, "test", cause=cause, relay=keeps) as uow:
                trace = start(uow.db.driver)
                claim_handled(uow.db, "test.queue", cause)
                assert (await (await uow.db.execute("SELECT 41 + 1", ())).fetchone()) == (42,)
                uow.emit(completed())
        assert round_trips(trace) == 2, "\n".join(trace)
        assert not any(line.endswith('Query\t "BEGIN"') for line in trace)
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM inbox"))).scalar() == 1
            assert (await conn.execute(sa.text("SELECT count(*) FROM outbox"))).scalar() == 1
        if keeps is not None:
            assert len(keeps.rows) == 1
    finally:
        await engine.dispose()


async def test_a_transaction_begun_with_its_first_statement_goes_back_transactional(settings):
    """psycopg runs in autocommit while the inbox row's own BEGIN holds the
    transaction; the pooled connection must come back out of it, whether
    the unit of work committed or failed."""
    settings = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE marks (n int)"))
        cause = new_event(completed(), source="test", correlation_id=uuid.uuid4())
        with pytest.raises(Boom):
            async with unit_of_work(engine, "test", cause=cause) as uow:
                claim_handled(uow.db, "test.queue", cause)
                await uow.db.execute("INSERT INTO marks VALUES (1)", ())
                raise Boom
        async with unit_of_work(engine, "test", cause=cause) as uow:  # the same event again
            assert uow.db.driver.autocommit is False
            claim_handled(uow.db, "test.queue", cause)
            await uow.db.execute("INSERT INTO marks VALUES (2)", ())  # the first was undone
        with pytest.raises(Boom):
            async with unit_of_work(engine, "test") as uow:  # psycopg's own BEGIN
                assert uow.db.driver.autocommit is False
                await uow.db.execute("INSERT INTO marks VALUES (3)", ())
                raise Boom
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM marks ORDER BY n"))).all()
            handled = (await conn.execute(sa.text("SELECT count(*) FROM inbox"))).scalar()
        assert [n for (n,) in rows] == [2]
        assert handled == 1
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


_MARKS = sa.table("marks", sa.column("n", sa.Integer))
_READ_MARK = Prepared(sa.select(_MARKS.c.n).where(_MARKS.c.n == sa.bindparam("n")))


@pytest.mark.parametrize("first", ["prepared", "sqlalchemy"])
async def test_a_request_transaction_begins_with_its_first_statement_on_the_driver(settings, first):
    """A request handler's first statement on the driver (a prepared one)
    carries BEGIN; when SQLAlchemy's connection goes first, psycopg sends
    BEGIN itself as before and the rest runs in that transaction."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE marks (n int)"))
            await conn.execute(sa.text("INSERT INTO marks VALUES (7)"))
        with protocol_trace() as start:
            async with unit_of_work(engine, "test", relay=Keeps()) as uow:
                trace = start(uow.db.driver)
                if first == "prepared":
                    assert (await uow.db.run(_READ_MARK, {"n": 7})).scalar_one() == 7
                else:
                    assert (await uow.conn.execute(sa.text("SELECT n FROM marks"))).scalar() == 7
                await uow.db.execute("INSERT INTO marks VALUES (8)", ())
                uow.emit(completed(), correlation_id=uuid.uuid4())
        assert round_trips(trace) == (3 if first == "prepared" else 4), "\n".join(trace)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM marks ORDER BY n"))).all()
            assert [n for (n,) in rows] == [7, 8]
            assert (await conn.execute(sa.text("SELECT count(*) FROM outbox"))).scalar() == 1
    finally:
        await engine.dispose()


_MARK = Prepared(sa.insert(_MARKS).values(n=sa.bindparam("n")).returning(_MARKS.c.n))


@pytest.mark.parametrize("first", ["prepared", "positional", "commit only", "sqlalchemy"])
async def test_an_event_handled_before_stops_the_statement_it_rides_with(settings, first):
    """The inbox row rides with the handler's first statement, whatever
    that is (a prepared statement's named parameters, a positional one, the
    COMMIT alone, SQLAlchemy's first statement): the first time both run in
    one transaction; the second time the claim fails, the statement behind
    it does not run, ``AlreadyHandled`` is raised and the connection goes
    back to the pool fit for the next transaction."""
    settings = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    engine = create_engine(settings)
    cause = new_event(completed(), source="test", correlation_id=uuid.uuid4())

    async def handle(n: int) -> None:
        async with unit_of_work(engine, "test", cause=cause) as uow:
            claim_handled(uow.db, "test.queue", cause)
            if first == "prepared":
                assert (await uow.db.run(_MARK, {"n": n})).scalar_one() == n
            elif first == "positional":
                await uow.db.execute("INSERT INTO marks VALUES (%s)", (n,))
            elif first == "sqlalchemy":
                await uow.conn.execute(sa.text("INSERT INTO marks VALUES (:n)"), {"n": n})
            if first != "commit only":
                await uow.db.execute("INSERT INTO marks VALUES (%s)", (n + 100,))

    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE marks (n int)"))
        await handle(1)
        with pytest.raises(AlreadyHandled):
            await handle(2)
        async with unit_of_work(engine, "test") as uow:  # the one pooled connection
            assert uow.db.driver.autocommit is False
            await uow.db.execute("INSERT INTO marks VALUES (3)", ())
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM marks ORDER BY n"))).all()
            handled = (await conn.execute(sa.text("SELECT count(*) FROM inbox"))).scalar()
        expected = [3] if first == "commit only" else [1, 3, 101]
        assert [n for (n,) in rows] == expected
        assert handled == 1
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_a_burst_beyond_the_pool_size_keeps_its_connections(settings):
    """Connections opened for a burst (beyond ``db_pool_size``, up to
    ``db_max_overflow`` more) stay in the pool: the next burst finds the same
    PostgreSQL backends instead of starting new ones."""
    import asyncio

    settings = settings.model_copy(update={"db_pool_size": 2, "db_max_overflow": 2})
    engine = create_engine(settings)

    async def burst() -> set[int]:
        held = asyncio.Event()
        pids: list[int] = []

        async def one() -> None:
            async with unit_of_work(engine, "test") as uow:
                pids.append((await uow.db.run(_BACKEND, {})).scalar_one())
                if len(pids) == 4:
                    held.set()
                await held.wait()  # all four connections out at once

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(4))), 10)
        return set(pids)

    try:
        first = await burst()
        assert len(first) == 4
        assert await burst() == first
    finally:
        await engine.dispose()


_BACKEND = Prepared(sa.select(sa.func.pg_backend_pid()))
