"""Inventory routes: read stock; admins restock."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.common.errors import not_found
from services.common.http import Runtime
from services.common.identity import AdminCaller
from services.common.text import InputModel

from . import domain
from .models import stock

router = APIRouter()


class StockLevel(BaseModel):
    sku: str
    available: int
    reserved: int


class RestockIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(gt=0, le=1_000_000)


@router.get("/inventory/{sku}")
async def get_stock(sku: str, runtime: Runtime) -> StockLevel:
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(stock.c.sku, stock.c.available, stock.c.reserved).where(
                    stock.c.sku == sku
                )
            )
        ).first()
    if row is None:
        raise not_found(f"stock for {sku}")
    return StockLevel(**row._mapping)


@router.post("/inventory/{sku}/restock")
async def restock(sku: str, body: RestockIn, runtime: Runtime, _: AdminCaller) -> StockLevel:
    async with runtime.unit_of_work() as uow:
        row = await domain.restock(uow.conn, sku, body.quantity)
    if row is None:
        raise not_found(f"stock for {sku}")
    return StockLevel(**row)
