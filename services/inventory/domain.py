"""Stock rules: reserve all or nothing, release or ship exactly once.

Every change is a conditional UPDATE on the stock row, so under READ
COMMITTED a concurrent reservation waits on the row lock and re-checks
``available`` on the new row: no oversell, with any number of consumers. Rows
are locked in SKU order, so two multi-item orders cannot deadlock."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.events import LineItem

from .models import reservations, stock


def merge_lines(items: Iterable[LineItem]) -> list[tuple[str, int]]:
    """One (sku, quantity) per SKU, sorted: the fixed lock order."""
    totals: Counter[str] = Counter()
    for item in items:
        totals[item.sku] += item.quantity
    return sorted(totals.items())


async def create_stock(conn: AsyncConnection, sku: str, quantity: int) -> None:
    await conn.execute(
        insert(stock)
        .values(sku=sku, available=quantity, reserved=0, shipped=0)
        .on_conflict_do_nothing()
    )


async def restock(conn: AsyncConnection, sku: str, quantity: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            stock.update()
            .where(stock.c.sku == sku)
            .values(available=stock.c.available + quantity, updated_at=sa.func.now())
            .returning(stock.c.sku, stock.c.available, stock.c.reserved)
        )
    ).first()
    return dict(row._mapping) if row else None


async def reservation_status(conn: AsyncConnection, order_id: uuid.UUID) -> str | None:
    """The order's reservation, locked for the rest of the transaction."""
    return (
        await conn.execute(
            sa.select(reservations.c.status)
            .where(reservations.c.order_id == order_id)
            .with_for_update()
        )
    ).scalar()


async def claim(conn: AsyncConnection, order_id: uuid.UUID, status: str) -> bool:
    """Create the order's reservation row with ``status`` unless one exists.

    A concurrent claim of the same order waits on the unique index until the
    other transaction ends, so a reservation and a release racing for one
    order are serialised: whichever comes second sees the first."""
    inserted = await conn.execute(
        insert(reservations)
        .values(order_id=order_id, status=status, items=[])
        .on_conflict_do_nothing()
        .returning(reservations.c.order_id)
    )
    return inserted.first() is not None


async def reserve(
    conn: AsyncConnection, order_id: uuid.UUID, lines: list[tuple[str, int]]
) -> list[str]:
    """Reserve every line or none. Returns the SKUs that could not be
    reserved (empty on success); the caller records the outcome."""
    short: list[str] = []
    savepoint = await conn.begin_nested()
    for sku, quantity in lines:
        taken = await conn.execute(
            stock.update()
            .where(stock.c.sku == sku, stock.c.available >= quantity)
            .values(
                available=stock.c.available - quantity,
                reserved=stock.c.reserved + quantity,
                updated_at=sa.func.now(),
            )
        )
        if taken.rowcount != 1:
            short.append(sku)
    if short:
        await savepoint.rollback()
    else:
        await savepoint.commit()
    return short


async def move(
    conn: AsyncConnection, lines: list[tuple[str, int]], source: str, target: str
) -> None:
    """Move quantities between the stock columns (reserved -> available on a
    release, reserved -> shipped on shipping, shipped -> available when a
    cancelled order's shipment is called back)."""
    for sku, quantity in lines:
        await conn.execute(
            stock.update()
            .where(stock.c.sku == sku)
            .values(
                {
                    source: stock.c[source] - quantity,
                    target: stock.c[target] + quantity,
                    "updated_at": sa.func.now(),
                }
            )
        )


async def record(
    conn: AsyncConnection, order_id: uuid.UUID, status: str, lines: list[tuple[str, int]]
) -> None:
    items = [{"sku": sku, "quantity": quantity} for sku, quantity in lines]
    await conn.execute(
        insert(reservations)
        .values(order_id=order_id, status=status, items=items)
        .on_conflict_do_update(
            index_elements=[reservations.c.order_id],
            set_={"status": status, "items": items, "updated_at": sa.func.now()},
        )
    )


async def reserved_lines(conn: AsyncConnection, order_id: uuid.UUID) -> list[tuple[str, int]]:
    items = (
        await conn.execute(
            sa.select(reservations.c["items"]).where(reservations.c.order_id == order_id)
        )
    ).scalar()
    return [(i["sku"], int(i["quantity"])) for i in items or []]
