"""The order's status machine.

    PENDING -> STOCK_RESERVED -> PAID -> COMPLETED, or CANCELLED (terminal)

Each service's events arrive on their own queue, so the order may hear of a
payment before it hears of the reservation: a step moves the order forward
to the furthest state it proves, never back, and never out of a terminal
state. Every state that is not terminal has a deadline: PENDING and
STOCK_RESERVED wait for another service's answer, PAID for shipping (which
retries, but whose event can still end in a dead-letter queue). Past it the
order is cancelled with reason ``timeout``, and the OrderCancelled that says
so makes inventory give the stock back and payment refund a capture: every
order ends terminal, even when a step is dead-lettered."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import tracing
from services.common.db import Driver, Prepared
from services.common.events import OrderCancelled, OrderCompleted
from services.common.outbox import UnitOfWork
from services.common.schema import outbox

from .models import orders


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    STOCK_RESERVED = "STOCK_RESERVED"
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.STOCK_RESERVED: 1,
    OrderStatus.PAID: 2,
    OrderStatus.COMPLETED: 3,
}
TERMINAL = {OrderStatus.COMPLETED, OrderStatus.CANCELLED}
WAITING = (OrderStatus.PENDING, OrderStatus.STOCK_RESERVED, OrderStatus.PAID)


@dataclass(frozen=True)
class Timeouts:
    step: timedelta  # for stock and for payment
    shipping: timedelta  # from PAID to ShippingCreated

    def of(self, status: OrderStatus) -> timedelta | None:
        if status is OrderStatus.PAID:
            return self.shipping
        return self.step if status in WAITING else None


class OrderNotYetKnown(Exception):
    """A step's event came before the order's creation; retried later."""


def _advance_to(target: OrderStatus) -> Any:
    earlier = [status for status, rank in _RANK.items() if rank < _RANK[target]]
    # the deadline by the database's clock, as the sweep that reads it
    deadline_at = (
        None
        if target in TERMINAL
        else sa.func.now()
        + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("timeout_s", type_=sa.Float))
    )
    return (
        orders.update()
        .where(orders.c.id == sa.bindparam("order_id"), orders.c.status.in_(earlier))
        .values(status=target, deadline_at=deadline_at, updated_at=sa.func.now())
        .returning(orders.c.id, orders.c.created_at)
    )


# Built once: one statement per target state (building it per event cost
# more than running it; docs/performance-journal.md).
_ADVANCE: dict[OrderStatus, Prepared] = {
    target: Prepared(_advance_to(target)) for target in _RANK if target is not OrderStatus.PENDING
}
_CANCEL = Prepared(
    orders.update()
    .where(orders.c.id == sa.bindparam("order_id"), orders.c.status.in_(WAITING))
    .values(
        status=OrderStatus.CANCELLED,
        cancel_reason=sa.bindparam("reason"),
        deadline_at=None,
        updated_at=sa.func.now(),
    )
    .returning(orders.c.id, orders.c.created_at)
)
_EXISTS = Prepared(sa.select(orders.c.id).where(orders.c.id == sa.bindparam("order_id")))


# told when an order ends, after its commit: outcome, reason, when it was created
Ended = Callable[[str, str, datetime], None]


async def advance(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    target: OrderStatus,
    timeouts: Timeouts | None,
    ended: Ended | None = None,
) -> bool:
    """Move the order forward to ``target``; False when that changes nothing.
    With no ``timeouts`` the order row keeps no deadline (an orchestrated
    order: the orchestrator's saga row holds its timers).

    One statement in the usual case: the UPDATE takes the row lock and
    checks the order is in a state before ``target``; only when it changes
    nothing does a second one tell an unknown order from a later one."""
    timeout = timeouts.of(target) if timeouts is not None else None
    moved = await uow.db.run(
        _ADVANCE[target],
        {"order_id": order_id, "timeout_s": timeout.total_seconds() if timeout else None},
    )
    row = moved.first()
    if row is None:
        await _known(uow.db, order_id)
        return False
    if target is OrderStatus.COMPLETED:
        uow.emit(OrderCompleted(order_id=order_id), correlation_id=order_id)
        if ended is not None:
            uow.after_commit(lambda: ended("COMPLETED", "", row.created_at))
    return True


async def cancel(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    reason: str,
    ended: Ended | None = None,
    saga_mode: str | None = None,
) -> bool:
    """Cancel the order unless it has ended; False when it had. One
    statement in the usual case, as ``advance``."""
    moved = await uow.db.run(_CANCEL, {"order_id": order_id, "reason": reason})
    row = moved.first()
    if row is None:
        await _known(uow.db, order_id)
        return False
    uow.emit(
        OrderCancelled(order_id=order_id, reason=reason),
        correlation_id=order_id,
        saga_mode=saga_mode,
    )
    if ended is not None:
        uow.after_commit(lambda: ended("CANCELLED", reason, row.created_at))
    return True


async def _known(db: Driver, order_id: uuid.UUID) -> None:
    """Raise OrderNotYetKnown when no such order was created (yet)."""
    exists = await db.run(_EXISTS, {"order_id": order_id})
    if exists.first() is None:
        raise OrderNotYetKnown(f"order {order_id} not created yet")


async def count_overdue(conn: AsyncConnection, grace_s: float = 5.0) -> int:
    """Orders not ended ``grace_s`` past their deadline: the sweep should
    have cancelled them (what the SagaOverdue alert watches)."""
    grace = sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_s)
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(orders)
        .where(orders.c.deadline_at < sa.func.now() - grace, orders.c.status.in_(WAITING))
    )
    return int(count or 0)


async def last_traceparent(conn: AsyncConnection, order_id: uuid.UUID) -> str | None:
    """The trace context of the order's last event this service wrote."""
    body = await conn.scalar(
        sa.select(outbox.c.body)
        .where(outbox.c.correlation_id == str(order_id))
        .order_by(outbox.c.id.desc())
        .limit(1)
    )
    return tracing.traceparent_in(body) if body else None


async def overdue(conn: AsyncConnection, limit: int = 100) -> list[uuid.UUID]:
    """Orders past their deadline, locked; other replicas skip them."""
    rows = await conn.execute(
        sa.select(orders.c.id)
        .where(orders.c.deadline_at < sa.func.now(), orders.c.status.in_(WAITING))
        .order_by(orders.c.deadline_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [row.id for row in rows]
