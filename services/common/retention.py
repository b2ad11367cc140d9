"""Retention of the messaging tables: a published outbox row and an inbox
record leave their table once they are older than they are kept for
(``SHOP_OUTBOX_KEEP_S``, ``SHOP_INBOX_KEEP_S``); unsent outbox rows are
never touched. Without it both tables grow by every event for as long as
the database lives. A published outbox row moves to the saga history (the
same event, less the relay's bookkeeping), which keeps it for
``SHOP_HISTORY_KEEP_S`` (7 days), so an old order's saga can still be told.

An inbox record is what makes a second copy of an event a no-op, so it is
kept far longer than any copy can come again (a relay's lease, a retry's
delay, a broker's redelivery): the settings refuse a shorter keep."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .settings import ServiceSettings

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000  # rows a transaction: short locks, short WAL bursts
# Replicas of one service share its database: one of them prunes at a time.
PRUNE_LOCK = 0x73686F70_70727565  # "shop" "prue"


def _prune(table: str, old: str) -> sa.TextClause:
    # by ctid: the row versions the inner scan found, without a second
    # lookup through an index the table may not have for ``old``
    return sa.text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE {old} < now() - make_interval(secs => :keep)"
        " LIMIT :batch))"
    )


# NULL (unsent) is never older; what leaves the outbox goes to the history
_PRUNE_OUTBOX = sa.text(
    "WITH moved AS (DELETE FROM outbox WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM outbox WHERE published_at < now() - make_interval(secs => :keep)"
    " LIMIT :batch)) RETURNING event_id, event_type, routing_key, correlation_id, body,"
    " created_at, published_at)"
    " INSERT INTO saga_history SELECT * FROM moved ON CONFLICT (event_id) DO NOTHING"
)
_PRUNE_INBOX = _prune("inbox", "handled_at")
_PRUNE_HISTORY = _prune("saga_history", "published_at")
_TRY_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(:k)")


@dataclass(frozen=True)
class Pruned:
    outbox: int  # moved to the history
    inbox: int
    history: int = 0


async def prune_once(
    engine: AsyncEngine, settings: ServiceSettings, batch: int = PRUNE_BATCH
) -> Pruned | None:
    """Delete what is past its keep, a batch a transaction, until none is
    left. None when another process of the service is pruning now."""
    counts = []
    for statement, keep in (
        (_PRUNE_OUTBOX, settings.outbox_keep_s),
        (_PRUNE_INBOX, settings.inbox_keep_s),
        (_PRUNE_HISTORY, settings.history_keep_s),
    ):
        total = 0
        while True:
            async with engine.begin() as conn:
                if not (await conn.execute(_TRY_LOCK, {"k": PRUNE_LOCK})).scalar():
                    return None
                deleted = (await conn.execute(statement, {"keep": keep, "batch": batch})).rowcount
            total += deleted
            if deleted < batch:
                break
        counts.append(total)
    return Pruned(outbox=counts[0], inbox=counts[1], history=counts[2])


async def prune_forever(engine: AsyncEngine, settings: ServiceSettings) -> None:
    """Prune at start and every ``prune_interval_s``; a failure (the
    database away) is logged and the next round tries again."""
    while True:
        try:
            pruned = await prune_once(engine, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("retention: pruning the messaging tables failed: %s", exc)
        else:
            if pruned is not None and (pruned.outbox or pruned.inbox or pruned.history):
                log.info(
                    "retention: moved %d published outbox rows to the saga history, deleted "
                    "%d inbox records and %d history rows",
                    pruned.outbox,
                    pruned.inbox,
                    pruned.history,
                )
        await asyncio.sleep(settings.prune_interval_s)
