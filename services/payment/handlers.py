"""Payment's part of the saga: charge once stock is reserved (StockReserved
carries the amount and the card); refund a capture whose order was cancelled
meanwhile. Orchestrated: the same functions on ChargePayment and
RefundPayment."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.common.consumer import Subscription
from services.common.db import Prepared
from services.common.events import (
    ChargePayment,
    Envelope,
    OrderCancelled,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    RefundPayment,
    StockReserved,
)
from services.common.outbox import UnitOfWork
from services.common.sagas import choreographed, compensating

from . import domain
from .models import intents, payments

# Records what StockReserved asks to charge and takes the intent's row lock
# (making the row when OrderCancelled has not): a charge and a cancel of one
# order run one after the other, never interleaved. Built once
# (docs/performance-journal.md).
_intent = insert(intents).values(
    order_id=sa.bindparam("order_id"),
    customer_id=sa.bindparam("customer_id"),
    amount_cents=sa.bindparam("amount_cents"),
    currency=sa.bindparam("currency"),
    card_token=sa.bindparam("card_token"),
)
_RECORD_INTENT = Prepared(
    _intent.on_conflict_do_update(
        index_elements=[intents.c.order_id],
        set_={
            "customer_id": _intent.excluded.customer_id,
            "amount_cents": _intent.excluded.amount_cents,
            "currency": _intent.excluded.currency,
            "card_token": _intent.excluded.card_token,
        },
    ).returning(intents.c.cancelled)
)
_PAID_ALREADY = Prepared(
    sa.select(payments.c.id).where(payments.c.order_id == sa.bindparam("order_id"))
)
_RECORD_PAYMENT = Prepared(
    payments.insert().values(
        id=sa.bindparam("id"),
        order_id=sa.bindparam("order_id"),
        customer_id=sa.bindparam("customer_id"),
        amount_cents=sa.bindparam("amount_cents"),
        currency=sa.bindparam("currency"),
        status=sa.bindparam("status"),
        reason=sa.bindparam("reason"),
        processor_attempts=sa.bindparam("processor_attempts"),
    )
)


class Handlers:
    """Payment's handlers, bound to how often the processor is tried."""

    def __init__(self, processor_attempts: int, processor_backoff_s: float) -> None:
        self.processor_attempts = processor_attempts
        self.processor_backoff_s = processor_backoff_s

    async def charge(self, event: Envelope[StockReserved], uow: UnitOfWork) -> None:
        data = event.data
        order_id = data.order_id
        cancelled = (
            await uow.db.run(
                _RECORD_INTENT,
                {
                    "order_id": order_id,
                    "customer_id": data.customer_id,
                    "amount_cents": data.total_cents,
                    "currency": data.currency,
                    "card_token": data.payment.card_token if data.payment else None,
                },
            )
        ).scalar_one()
        if cancelled:
            return  # the order was cancelled before we charged: never charge
        if (
            data.payment is None
            or data.total_cents is None
            or data.currency is None
            or data.customer_id is None
        ):
            # Made to API.md's table alone (say, injected by hand): nothing
            # to charge with, so the saga compensates as for a declined card.
            uow.emit(PaymentFailed(order_id=order_id, reason="no_payment_details"))
            return
        done = (await uow.db.run(_PAID_ALREADY, {"order_id": order_id})).first()
        if done is not None:
            return
        result = await domain.charge(
            data.payment.card_token,
            data.total_cents,
            attempts=self.processor_attempts,
            backoff_s=self.processor_backoff_s,
        )
        payment_id = uuid.uuid4()
        await uow.db.run(
            _RECORD_PAYMENT,
            {
                "id": payment_id,
                "order_id": order_id,
                "customer_id": data.customer_id,
                "amount_cents": data.total_cents,
                "currency": data.currency,
                "status": "CAPTURED" if result.approved else "DECLINED",
                "reason": result.reason,
                "processor_attempts": result.attempts,
            },
        )
        if result.approved:
            uow.emit(
                PaymentSucceeded(
                    order_id=order_id,
                    payment_id=payment_id,
                    amount_cents=data.total_cents,
                    currency=data.currency,
                    customer_id=data.customer_id,
                    shipping_address=data.shipping_address,
                )
            )
        else:
            uow.emit(PaymentFailed(order_id=order_id, reason=result.reason or "card_declined"))

    async def order_cancelled(self, event: Envelope[Any], uow: UnitOfWork) -> None:
        """Remember the cancel (a later StockReserved then charges nothing) and
        refund a capture that came too late (OrderCancelled, RefundPayment)."""
        order_id = event.data.order_id
        await uow.conn.execute(
            insert(intents)
            .values(order_id=order_id, cancelled=True)
            .on_conflict_do_update(index_elements=[intents.c.order_id], set_={"cancelled": True})
        )
        refunded = (
            await uow.conn.execute(
                payments.update()
                .where(payments.c.order_id == order_id, payments.c.status == "CAPTURED")
                .values(status="REFUNDED", reason=event.data.reason, updated_at=sa.func.now())
                .returning(payments.c.id, payments.c.amount_cents, payments.c.currency)
            )
        ).first()
        if refunded is not None:
            uow.emit(
                PaymentRefunded(
                    order_id=order_id,
                    payment_id=refunded.id,
                    amount_cents=refunded.amount_cents,
                    currency=refunded.currency,
                )
            )

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(StockReserved, choreographed(self.charge)),
            Subscription(OrderCancelled, choreographed(self.order_cancelled)),
            # orchestrated: the same functions on the orchestrator's commands
            Subscription(ChargePayment, self.charge),
            Subscription(RefundPayment, compensating(self.order_cancelled)),
        ]


# Consumed once, no more: the service deletes their queues at start
# (CartCheckedOut: before its amount and address came with the saga's events).
RETIRED = ("cart.checked_out",)
