"""The pool pings a connection that sat idle and replaces it when dead; a
connection in steady use is not pinged (docs/performance-journal.md)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa

from services.common.db import create_engine
from tests.conftest import PG_ADMIN_URL


def terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def test_an_idle_dead_connection_is_replaced_before_use(settings):
    engine = create_engine(
        settings.model_copy(update={"db_pool_size": 1, "db_ping_after_idle_s": 0.2})
    )
    try:
        pid = await backend_pid(engine)
        terminate(pid)
        await asyncio.sleep(0.4)  # idle past the threshold: pinged, found dead, replaced
        alive = await backend_pid(engine)
        assert alive != pid
        # Idle again and alive: the ping leaves no transaction open behind
        # it, so the connection can still be switched to autocommit.
        await asyncio.sleep(0.4)
        assert await backend_pid(engine.execution_options(isolation_level="AUTOCOMMIT")) == alive
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(settings):
    engine = create_engine(
        settings.model_copy(update={"db_pool_size": 1, "db_ping_after_idle_s": 60})
    )
    try:
        pid = await backend_pid(engine)
        terminate(pid)
        # No ping: the statement meets the dead connection and fails as a
        # disconnect (transient for consumers, a 503 for requests) ...
        with pytest.raises(sa.exc.OperationalError):
            await backend_pid(engine)
        # ... and the pool has dropped it: the next checkout is a new one.
        assert await backend_pid(engine) != pid
    finally:
        await engine.dispose()
