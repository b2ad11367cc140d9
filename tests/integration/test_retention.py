"""The messaging tables' retention against the real database: what is past
its keep goes (a published outbox row into the saga history, which keeps it
for days), unsent outbox rows and recent records stay."""

from __future__ import annotations

import uuid

import pydantic
import pytest
import sqlalchemy as sa

from services.common.db import create_engine
from services.common.retention import PRUNE_LOCK, Pruned, prune_once
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from tests.conftest import eventually

HOUR = 3600


OUTBOX_ROW = sa.text(
    "INSERT INTO outbox (event_id, event_type, routing_key, correlation_id, body,"
    " created_at, published_at) VALUES (:id, 'OrderCompleted', 'order.completed',"
    " 'x', '\\x00', now() - make_interval(secs => :age),"
    " CASE WHEN :published THEN now() - make_interval(secs => :age) END)"
)
INBOX_ROW = sa.text(
    "INSERT INTO inbox (consumer, event_id, event_type, handled_at)"
    " VALUES ('order.order.completed', :id, 'OrderCompleted',"
    " now() - make_interval(secs => :age))"
)


async def add(engine, row: sa.TextClause, *, age_s: float, **params: object) -> uuid.UUID:
    """One row of an event ``age_s`` old (published that long ago, or handled)."""
    event_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(row, {"id": event_id, "age": age_s, **params})
    return event_id


async def add_outbox(engine, *, age_s: float, published: bool) -> uuid.UUID:
    return await add(engine, OUTBOX_ROW, age_s=age_s, published=published)


async def add_inbox(engine, *, age_s: float) -> uuid.UUID:
    return await add(engine, INBOX_ROW, age_s=age_s)


async def ids(engine, table: str) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return set((await conn.execute(sa.text(f"SELECT event_id FROM {table}"))).scalars())


@pytest.fixture
async def engine(settings: ServiceSettings):
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def test_only_what_is_past_its_keep_is_deleted(settings, engine):
    settings = settings.model_copy(update={"outbox_keep_s": HOUR, "inbox_keep_s": 24 * HOUR})
    for _ in range(5):  # more than a batch: pruning goes on until none is left
        await add_outbox(engine, age_s=2 * HOUR, published=True)
    recent = await add_outbox(engine, age_s=HOUR - 60, published=True)
    unsent = await add_outbox(engine, age_s=48 * HOUR, published=False)
    for _ in range(3):
        await add_inbox(engine, age_s=25 * HOUR)
    remembered = await add_inbox(engine, age_s=23 * HOUR)

    history_before = await ids(engine, "saga_history")
    assert await prune_once(engine, settings, batch=2) == Pruned(outbox=5, inbox=3)
    assert await ids(engine, "outbox") == {recent, unsent}
    assert await ids(engine, "inbox") == {remembered}
    assert len(await ids(engine, "saga_history") - history_before) == 5  # moved, whole
    assert await prune_once(engine, settings, batch=2) == Pruned(outbox=0, inbox=0)


async def test_the_saga_history_keeps_an_event_for_days_then_lets_it_go(settings, engine):
    settings = settings.model_copy(update={"outbox_keep_s": HOUR, "history_keep_s": 7 * 24 * HOUR})
    last_week = await add_outbox(engine, age_s=6 * 24 * HOUR, published=True)
    too_old = await add_outbox(engine, age_s=8 * 24 * HOUR, published=True)
    await prune_once(engine, settings)
    outbox, history = await ids(engine, "outbox"), await ids(engine, "saga_history")
    assert {last_week, too_old}.isdisjoint(outbox)
    assert last_week in history and too_old not in history
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT event_type, routing_key, correlation_id, body FROM saga_history"
                    " WHERE event_id = :id"
                ),
                {"id": last_week},
            )
        ).one()
    assert tuple(row) == ("OrderCompleted", "order.completed", "x", b"\x00")


async def test_one_process_of_a_service_prunes_at_a_time(settings, engine):
    old = await add_outbox(engine, age_s=2 * HOUR, published=True)
    other = create_engine(settings)
    try:
        async with other.begin() as conn:  # another replica, mid-prune
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": PRUNE_LOCK},
            )
            assert await prune_once(engine, settings) is None
            assert await ids(engine, "outbox") == {old}
        assert await prune_once(engine, settings) == Pruned(outbox=1, inbox=0)
    finally:
        await other.dispose()


async def test_a_running_service_prunes_its_tables(settings, engine):
    settings = settings.model_copy(update={"outbox_keep_s": 60.0, "prune_interval_s": 0.2})
    runtime = ServiceRuntime(settings)
    await runtime.start()
    try:
        young = await add_outbox(engine, age_s=1, published=True)
        await add_outbox(engine, age_s=120, published=True)

        async def only_the_young_row_left() -> bool:
            return await ids(engine, "outbox") == {young}

        await eventually(only_the_young_row_left, timeout=10, interval=0.1)
    finally:
        await runtime.stop()


def test_an_inbox_kept_shorter_than_a_copy_can_come_again_is_refused():
    refused = r"inbox_keep_s \(60.0\) must be at least 300 s"
    with pytest.raises(pydantic.ValidationError, match=refused):
        ServiceSettings(service_name="x", outbox_lease_s=30.0, inbox_keep_s=60.0)
    assert ServiceSettings(service_name="x", outbox_lease_s=30.0, inbox_keep_s=300.0)
