"""`shopctl inject`: publish one event into shop.events, as a service would."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from services.common.events import CONTENT_TYPE, EVENT_MODELS, Envelope, new_event
from shopctl.amqp import publish_event
from shopctl.errors import UsageError


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


def inject(broker_url: str, event: Envelope[Any]) -> None:
    asyncio.run(
        publish_event(
            broker_url,
            event.routing_key,
            event.to_json(),
            message_id=str(event.id),
            content_type=CONTENT_TYPE,
            client="shopctl inject",
        )
    )
