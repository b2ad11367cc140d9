"""`shopctl inject`: publish one event into shop.events, as a service would."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import orjson
from pydantic import ValidationError

from services.common.events import CONTENT_TYPE, EVENT_MODELS, Envelope, new_event
from shopctl.amqp import broker_connection
from shopctl.errors import ShopError, UsageError


def build_event(event_type: str, data: str, correlation_id: str | None) -> Envelope[Any]:
    """A valid envelope of ``event_type`` (its name or routing key) around
    ``data`` (JSON); ShopError naming what is wrong otherwise."""
    model = EVENT_MODELS.get(event_type) or next(
        (m for m in EVENT_MODELS.values() if m.routing_key == event_type), None
    )
    if model is None:
        known = ", ".join(sorted(EVENT_MODELS))
        raise UsageError(f"no event type {event_type!r}; the types are {known}")
    try:
        fields = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--data is not JSON: {exc}") from None
    try:
        payload = model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()[:4]
        )
        raise UsageError(f"--data is not a valid {model.event_type}: {problems}") from None
    saga = correlation_id or str(getattr(payload, "order_id", "") or uuid.uuid4())
    return new_event(payload, source="shopctl", correlation_id=saga)


async def publish(broker_url: str, routing_key: str, body: bytes, message_id: str) -> None:
    """Publish one body to shop.events, confirmed; ShopError when nothing is
    bound to its routing key (no consumer would ever see it)."""
    async with broker_connection(broker_url, "shopctl inject") as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange("shop.events", ensure=False)
        try:
            await exchange.publish(
                aio_pika.Message(
                    body,
                    content_type=CONTENT_TYPE,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message_id,
                ),
                routing_key=routing_key,
                mandatory=True,
                timeout=10,
            )
        except aio_pika.exceptions.DeliveryError:
            raise ShopError(
                f"nothing is bound to {routing_key!r}: no part consumes it right now",
                hint="is the stack up? shopctl status",
            ) from None


def inject(broker_url: str, event: Envelope[Any]) -> None:
    asyncio.run(publish(broker_url, event.routing_key, event.to_json(), str(event.id)))
