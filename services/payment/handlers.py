"""Payment's part of the saga: charge once stock is reserved; refund a
capture whose order was cancelled meanwhile."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.common.consumer import Subscription
from services.common.events import (
    CartCheckedOut,
    Envelope,
    OrderCancelled,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    StockReserved,
)
from services.common.outbox import UnitOfWork

from . import domain
from .models import intents, payments


class IntentNotYetKnown(Exception):
    """StockReserved came before this service saw the checkout; retried later."""


class PaymentHandlers:
    def __init__(self, processor_attempts: int, processor_backoff_s: float) -> None:
        self.processor_attempts = processor_attempts
        self.processor_backoff_s = processor_backoff_s

    async def record_intent(self, event: Envelope[CartCheckedOut], uow: UnitOfWork) -> None:
        data = event.data
        values = {
            "customer_id": data.customer_id,
            "amount_cents": data.total_cents,
            "currency": data.currency,
            "card_token": data.payment.card_token,
        }
        await uow.conn.execute(
            insert(intents)
            .values(order_id=data.order_id, **values)
            .on_conflict_do_update(index_elements=[intents.c.order_id], set_=values)
        )

    async def charge(self, event: Envelope[StockReserved], uow: UnitOfWork) -> None:
        order_id = event.data.order_id
        intent = (
            await uow.conn.execute(
                sa.select(intents).where(intents.c.order_id == order_id).with_for_update()
            )
        ).first()
        if intent is None or intent.card_token is None:
            if intent is not None and intent.cancelled:
                return
            raise IntentNotYetKnown(f"no checkout seen yet for order {order_id}")
        if intent.cancelled:
            return  # the order was cancelled before we charged: never charge
        done = (
            await uow.conn.execute(sa.select(payments.c.id).where(payments.c.order_id == order_id))
        ).first()
        if done is not None:
            return
        result = await domain.charge(
            intent.card_token,
            intent.amount_cents,
            attempts=self.processor_attempts,
            backoff_s=self.processor_backoff_s,
        )
        payment_id = uuid.uuid4()
        await uow.conn.execute(
            payments.insert().values(
                id=payment_id,
                order_id=order_id,
                customer_id=intent.customer_id,
                amount_cents=intent.amount_cents,
                currency=intent.currency,
                status="CAPTURED" if result.approved else "DECLINED",
                reason=result.reason,
                processor_attempts=result.attempts,
            )
        )
        if result.approved:
            uow.emit(
                PaymentSucceeded(
                    order_id=order_id,
                    payment_id=payment_id,
                    amount_cents=intent.amount_cents,
                    currency=intent.currency,
                )
            )
        else:
            uow.emit(PaymentFailed(order_id=order_id, reason=result.reason or "card_declined"))

    async def order_cancelled(self, event: Envelope[OrderCancelled], uow: UnitOfWork) -> None:
        """Remember the cancel (a later StockReserved then charges nothing) and
        refund a capture that came too late."""
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
            Subscription(CartCheckedOut, self.record_intent),
            Subscription(StockReserved, self.charge),
            Subscription(OrderCancelled, self.order_cancelled),
        ]
