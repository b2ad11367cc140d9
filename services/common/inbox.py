"""The inbox: which events a consumer has handled, recorded in the handler's
own transaction so a redelivery or a duplicate changes nothing."""

from __future__ import annotations

from typing import Any

from .db import Driver
from .events import Envelope

# psycopg's own SQL on the driver's connection (services.common.db.Driver);
# the table is services.common.schema.inbox.
_RECORD = (
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES (%s, %s, %s)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


async def record_handled(db: Driver, consumer: str, event: Envelope[Any]) -> bool:
    """Claim ``event`` for ``consumer`` in the current transaction.

    True the first time; False when it was already handled. A concurrent
    claim of the same id waits on the row lock until the other transaction
    ends, so two deliveries at once still produce one effect."""
    cursor = await db.execute(_RECORD, (consumer, event.id, event.type))
    return await cursor.fetchone() is not None
