"""services.common.db.Pooled: connections taken from the pool without
SQLAlchemy's Connection go back to it as the pool expects them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common.db import Pooled, create_engine
from services.common.outbox import unit_of_work


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
