"""Payment routes: a customer's payments, by order."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from services.common.http import Runtime
from services.common.identity import CurrentCaller
from services.common.listing import rows_of_order

from .models import payments

router = APIRouter()


class Payment(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    amount_cents: int
    currency: str
    status: str
    reason: str | None
    created_at: datetime


class PaymentList(BaseModel):
    items: list[Payment]


@router.get("/payments")
async def list_payments(
    runtime: Runtime, caller: CurrentCaller, order_id: uuid.UUID | None = None
) -> PaymentList:
    columns = [payments.c[name] for name in Payment.model_fields]
    async with runtime.engine.connect() as conn:
        rows = await rows_of_order(conn, payments, columns, caller, order_id)
    return PaymentList(items=[Payment.model_validate(r) for r in rows])
