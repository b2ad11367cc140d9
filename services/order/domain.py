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
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.events import OrderCancelled, OrderCompleted
from services.common.outbox import UnitOfWork

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


async def lock(conn: AsyncConnection, order_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(sa.select(orders).where(orders.c.id == order_id).with_for_update())
    ).first()
    if row is None:
        raise OrderNotYetKnown(f"order {order_id} not created yet")
    return row


def deadline(status: OrderStatus, timeouts: Timeouts) -> Any:
    timeout = timeouts.of(status)
    return sa.func.now() + timeout if timeout is not None else None


async def advance(
    uow: UnitOfWork, order_id: uuid.UUID, target: OrderStatus, timeouts: Timeouts
) -> bool:
    """Move the order forward to ``target``; False when that changes nothing."""
    row = await lock(uow.conn, order_id)
    current = OrderStatus(row.status)
    if current in TERMINAL or _RANK[target] <= _RANK[current]:
        return False
    await uow.conn.execute(
        orders.update()
        .where(orders.c.id == order_id)
        .values(status=target, deadline_at=deadline(target, timeouts), updated_at=sa.func.now())
    )
    if target is OrderStatus.COMPLETED:
        uow.emit(OrderCompleted(order_id=order_id), correlation_id=order_id)
    return True


async def cancel(uow: UnitOfWork, order_id: uuid.UUID, reason: str) -> bool:
    row = await lock(uow.conn, order_id)
    if OrderStatus(row.status) in TERMINAL:
        return False
    await uow.conn.execute(
        orders.update()
        .where(orders.c.id == order_id)
        .values(
            status=OrderStatus.CANCELLED,
            cancel_reason=reason,
            deadline_at=None,
            updated_at=sa.func.now(),
        )
    )
    uow.emit(OrderCancelled(order_id=order_id, reason=reason), correlation_id=order_id)
    return True


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
