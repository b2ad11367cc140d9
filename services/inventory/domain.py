"""Stock rules: reserve all or nothing, release or ship exactly once.

Every change is a conditional UPDATE on the stock row, so under READ
COMMITTED a concurrent reservation waits on the row lock and re-checks
``available`` on the new row: no oversell, with any number of consumers. Rows
are locked in SKU order, so two multi-item orders cannot deadlock."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Driver, Prepared
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


# The saga's statements: built once, with bind parameters, and run on the
# driver's connection (services.common.db.Prepared, docs/performance-journal.md).
_RESERVATION = Prepared(
    sa.select(reservations.c.status, reservations.c["items"])
    .where(reservations.c.order_id == sa.bindparam("order_id"))
    .with_for_update()
)
_CLAIM = Prepared(
    insert(reservations)
    .values(order_id=sa.bindparam("order_id"), status=sa.bindparam("status"), items=[])
    .on_conflict_do_nothing()
    .returning(reservations.c.order_id)
)
_TAKE = Prepared(
    stock.update()
    .where(stock.c.sku == sa.bindparam("the_sku"), stock.c.available >= sa.bindparam("quantity"))
    .values(
        available=stock.c.available - sa.bindparam("quantity"),
        reserved=stock.c.reserved + sa.bindparam("quantity"),
        updated_at=sa.func.now(),
    )
)
_ITEMS = sa.bindparam("new_items", type_=reservations.c["items"].type)
_STATUS: Any = sa.bindparam("new_status")
_RECORD = Prepared(
    insert(reservations)
    .values(order_id=sa.bindparam("order_id"), status=_STATUS, items=_ITEMS)
    .on_conflict_do_update(
        index_elements=[reservations.c.order_id],
        set_={"status": _STATUS, "items": _ITEMS, "updated_at": sa.func.now()},
    )
)


@functools.cache
def _move(source: str, target: str) -> Prepared:
    return Prepared(
        stock.update()
        .where(stock.c.sku == sa.bindparam("the_sku"))
        .values(
            {
                source: stock.c[source] - sa.bindparam("quantity"),
                target: stock.c[target] + sa.bindparam("quantity"),
                "updated_at": sa.func.now(),
            }
        )
    )


async def reservation(db: Driver, order_id: uuid.UUID) -> tuple[str, list[tuple[str, int]]] | None:
    """The order's reservation (status and lines), locked for the rest of
    the transaction; None when there is none."""
    row = (await db.run(_RESERVATION, {"order_id": order_id})).first()
    if row is None:
        return None
    return row.status, [(i["sku"], int(i["quantity"])) for i in row[1] or []]


async def claim(db: Driver, order_id: uuid.UUID, status: str) -> bool:
    """Create the order's reservation row with ``status`` unless one exists.

    A concurrent claim of the same order waits on the unique index until the
    other transaction ends, so a reservation and a release racing for one
    order are serialised: whichever comes second sees the first."""
    inserted = await db.run(_CLAIM, {"order_id": order_id, "status": status})
    return inserted.first() is not None


async def reserve(db: Driver, lines: list[tuple[str, int]]) -> list[str]:
    """Reserve every line or none. Returns the SKUs that could not be
    reserved (empty on success); the caller records the outcome. One line
    (the usual order) is one statement; more go inside a savepoint."""
    if len(lines) == 1:
        [(sku, quantity)] = lines
        taken = await db.run(_TAKE, {"the_sku": sku, "quantity": quantity})
        return [] if taken.rowcount == 1 else [sku]
    short: list[str] = []
    await db.execute("SAVEPOINT reserve", ())
    for sku, quantity in lines:
        taken = await db.run(_TAKE, {"the_sku": sku, "quantity": quantity})
        if taken.rowcount != 1:
            short.append(sku)
    if short:
        await db.execute("ROLLBACK TO SAVEPOINT reserve", ())
    await db.execute("RELEASE SAVEPOINT reserve", ())
    return short


async def move(db: Driver, lines: list[tuple[str, int]], source: str, target: str) -> None:
    """Move quantities between the stock columns (reserved -> available on a
    release, reserved -> shipped on shipping, shipped -> available when a
    cancelled order's shipment is called back)."""
    for sku, quantity in lines:
        await db.run(_move(source, target), {"the_sku": sku, "quantity": quantity})


async def record(
    db: Driver, order_id: uuid.UUID, status: str, lines: list[tuple[str, int]]
) -> None:
    items = [{"sku": sku, "quantity": quantity} for sku, quantity in lines]
    await db.run(_RECORD, {"order_id": order_id, "new_status": status, "new_items": items})
