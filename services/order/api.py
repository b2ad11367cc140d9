"""Order routes: a customer's own orders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from services.common.errors import not_found
from services.common.http import Runtime
from services.common.identity import CurrentCaller

from .models import orders

router = APIRouter()


class OrderLine(BaseModel):
    sku: str
    quantity: int
    unit_price_cents: int


class Order(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    status: str
    cancel_reason: str | None
    items: list[OrderLine]
    total_cents: int
    currency: str
    created_at: datetime
    updated_at: datetime


class OrderList(BaseModel):
    items: list[Order]


def _order(row: Any) -> Order:
    return Order.model_validate(row._mapping, from_attributes=False)


@router.get("/orders")
async def list_orders(runtime: Runtime, caller: CurrentCaller) -> OrderList:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(orders)
            .where(orders.c.customer_id == caller.customer_id)
            .order_by(orders.c.created_at.desc())
            .limit(200)
        )
        return OrderList(items=[_order(row) for row in rows])


@router.get("/orders/{order_id}")
async def get_order(order_id: uuid.UUID, runtime: Runtime, caller: CurrentCaller) -> Order:
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(orders).where(orders.c.id == order_id))).first()
    if row is None or (row.customer_id != caller.customer_id and not caller.is_admin):
        raise not_found(f"order {order_id}")
    return _order(row)
