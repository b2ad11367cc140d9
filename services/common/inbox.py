"""The inbox: which events a consumer has handled, recorded in the handler's
own transaction so a redelivery or a duplicate changes nothing."""

from __future__ import annotations

from typing import Any

import psycopg

from .db import Driver, Rider
from .events import Envelope

# psycopg's own SQL on the driver's connection (services.common.db.Driver);
# the table is services.common.schema.inbox.
# The row rides with the transaction's first statement (services.common.db.
# Rider): no ON CONFLICT, so a second claim fails and stops the statement
# behind it. The primary key's name, as PostgreSQL names it.
_CLAIM = "INSERT INTO inbox (consumer, event_id, event_type) VALUES "
_CLAIM_NAMED = _CLAIM + "(%(inbox_consumer)s, %(inbox_event_id)s, %(inbox_event_type)s)"
_CLAIM_POSITIONAL = _CLAIM + "(%s, %s, %s)"
_PRIMARY_KEY = "inbox_pkey"


class AlreadyHandled(Exception):
    """The consumer has handled this event before: nothing of this
    transaction may commit."""


def _refused(exc: psycopg.Error) -> Exception | None:
    if isinstance(exc, psycopg.errors.UniqueViolation) and exc.diag.constraint_name == _PRIMARY_KEY:
        return AlreadyHandled(str(exc).splitlines()[0])
    return None


def claim_handled(db: Driver, consumer: str, event: Envelope[Any]) -> None:
    """Claim ``event`` for ``consumer`` in the current transaction, in the
    same round trip as the transaction's first statement (or its COMMIT).
    Already handled, that statement raises ``AlreadyHandled`` and does not
    run. A concurrent claim of the same id waits on the row lock until the
    other transaction ends, so two deliveries at once still produce one
    effect."""
    db.ride_with_next(
        Rider(
            _CLAIM_NAMED,
            _CLAIM_POSITIONAL,
            {
                "inbox_consumer": consumer,
                "inbox_event_id": event.id,
                "inbox_event_type": event.type,
            },
            _refused,
        )
    )
