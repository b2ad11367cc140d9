"""The inbox: which events a consumer has handled, recorded in the handler's
own transaction so a redelivery or a duplicate changes nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .events import Envelope
from .schema import inbox

# Built once: building and keying the statement on every message cost more
# than running it (docs/performance.md).
_RECORD = (
    insert(inbox)
    .values(
        consumer=sa.bindparam("consumer"),
        event_id=sa.bindparam("event_id"),
        event_type=sa.bindparam("event_type"),
    )
    .on_conflict_do_nothing()
    .returning(inbox.c.event_id)
)


async def record_handled(conn: AsyncConnection, consumer: str, event: Envelope[Any]) -> bool:
    """Claim ``event`` for ``consumer`` in the current transaction.

    True the first time; False when it was already handled. A concurrent
    claim of the same id waits on the row lock until the other transaction
    ends, so two deliveries at once still produce one effect."""
    result = await conn.execute(
        _RECORD, {"consumer": consumer, "event_id": event.id, "event_type": event.type}
    )
    return result.first() is not None
