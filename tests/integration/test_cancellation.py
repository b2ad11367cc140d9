"""C9: a request cancelled while its transaction holds a row lock gives the
connection back clean: the lock is released, nothing idles in a transaction,
the pool has it back."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest
import sqlalchemy as sa

from services.common.db import create_engine
from services.common.outbox import unit_of_work
from tests.conftest import PG_ADMIN_URL, eventually


def idle_in_transaction(application: str) -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND state LIKE 'idle in transaction%%'",
            (application,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("through", ["sqlalchemy", "driver"])
async def test_cancelled_transaction_releases_its_lock_and_connection(settings, through):
    """Whether the lock was taken through SQLAlchemy's connection or the
    driver's (services.common.db.Pooled)."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(engine, "test") as uow:
            await uow.conn.execute(sa.text("INSERT INTO effects VALUES ('k', 0)"))

        locked = asyncio.Event()
        lock = "SELECT * FROM effects WHERE key = 'k' FOR UPDATE"

        async def request_holding_a_lock() -> None:
            async with unit_of_work(engine, "test") as uow:
                if through == "sqlalchemy":
                    await uow.conn.execute(sa.text(lock))
                else:
                    await uow.db.execute(lock, ())
                locked.set()
                await asyncio.sleep(3600)  # the client goes away meanwhile

        request = asyncio.create_task(request_holding_a_lock())
        await asyncio.wait_for(locked.wait(), 10)
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request

        async with engine.begin() as conn:  # the row is free again, at once
            await conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            await conn.execute(sa.text("UPDATE effects SET count = 1 WHERE key = 'k'"))
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        await eventually(lambda: idle_in_transaction(settings.service_name) == 0, timeout=5)
    finally:
        await engine.dispose()
