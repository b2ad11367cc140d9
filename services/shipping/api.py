"""Shipping routes: a customer's shipments, by order."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.common.http import Runtime
from services.common.identity import CurrentCaller
from services.common.listing import rows_of_order

from .models import shipments

router = APIRouter()


class Shipment(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    tracking_number: str
    address: dict[str, Any]
    status: str
    created_at: datetime


class ShipmentList(BaseModel):
    items: list[Shipment]


@router.get("/shipments")
async def list_shipments(
    runtime: Runtime, caller: CurrentCaller, order_id: uuid.UUID | None = None
) -> ShipmentList:
    columns = [shipments.c[name] for name in Shipment.model_fields]
    async with runtime.engine.connect() as conn:
        rows = await rows_of_order(conn, shipments, columns, caller, order_id)
    return ShipmentList(items=[Shipment.model_validate(r) for r in rows])
