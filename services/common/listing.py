"""``GET /<things>?order_id=``: the caller's records of one order.

Payments and shipments answer the same way: the caller's own rows; 404 when
the order's rows belong to someone else (A1), so ids cannot be probed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import not_found
from .identity import Caller


async def rows_of_order(
    conn: AsyncConnection,
    table: sa.Table,
    columns: Sequence[sa.ColumnElement[Any]],
    caller: Caller,
    order_id: uuid.UUID | None,
) -> list[dict[str, Any]]:
    query = sa.select(*columns, table.c.customer_id).order_by(table.c.created_at)
    if order_id is not None:
        query = query.where(table.c.order_id == order_id)
    if not caller.is_admin and order_id is None:
        query = query.where(table.c.customer_id == caller.customer_id)
    rows = [dict(row._mapping) for row in await conn.execute(query.limit(200))]
    if not caller.is_admin and any(r["customer_id"] != caller.customer_id for r in rows):
        raise not_found(f"order {order_id}")
    return rows
