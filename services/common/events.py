"""The CloudEvents 1.0 envelope and the data model of every shop event.

The models here are the single source of the event catalog: services build
and parse events with them, and the AsyncAPI document is generated from them.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

import orjson
from pydantic import ConfigDict, Field, ValidationError

from .text import TEXT_CHECKED, InputModel, json_text_is_clean
from .tracing import current_traceparent

CONTENT_TYPE = "application/cloudevents+json"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class EventData(InputModel):
    """Base of every event's ``data``. Subclasses name their type and routing key."""

    model_config = ConfigDict(extra="allow", frozen=True)
    event_type: ClassVar[str]
    routing_key: ClassVar[str]


class LineItem(InputModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    sku: str
    quantity: int = Field(gt=0)
    unit_price_cents: int = Field(default=0, ge=0)


class ShippingAddress(InputModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


class PaymentDetails(InputModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    card_token: str


class CartCheckedOut(EventData):
    event_type = "CartCheckedOut"
    routing_key = "cart.checked_out"
    order_id: uuid.UUID
    cart_id: uuid.UUID
    customer_id: uuid.UUID
    items: list[LineItem]
    total_cents: int = Field(ge=0)
    currency: str
    payment: PaymentDetails
    shipping_address: ShippingAddress


# The saga's events carry what its later steps need (event-carried state):
# payment charges from StockReserved and shipping ships from
# PaymentSucceeded, so neither takes CartCheckedOut nor waits to have seen it.
# Two deliveries an order fewer (docs/performance-journal.md) and no race between a
# step and the checkout it depends on. The carried fields extend API.md's
# table, so they are optional: an event made to the table alone (`shopctl
# inject`, another team's producer) is still valid; payment declines one it
# cannot charge, shipping dead-letters one it cannot ship.


class OrderCreated(EventData):
    event_type = "OrderCreated"
    routing_key = "order.created"
    order_id: uuid.UUID
    customer_id: uuid.UUID
    items: list[LineItem]
    total_cents: int = Field(ge=0)
    currency: str
    payment: PaymentDetails | None = None
    shipping_address: ShippingAddress | None = None


class StockReserved(EventData):
    event_type = "StockReserved"
    routing_key = "stock.reserved"
    order_id: uuid.UUID
    items: list[LineItem]
    customer_id: uuid.UUID | None = None
    total_cents: int | None = Field(default=None, ge=0)
    currency: str | None = None
    payment: PaymentDetails | None = None
    shipping_address: ShippingAddress | None = None


class StockReservationFailed(EventData):
    event_type = "StockReservationFailed"
    routing_key = "stock.reservation_failed"
    order_id: uuid.UUID
    reason: str
    skus: list[str]


class PaymentSucceeded(EventData):
    event_type = "PaymentSucceeded"
    routing_key = "payment.succeeded"
    order_id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int = Field(ge=0)
    currency: str
    customer_id: uuid.UUID | None = None
    shipping_address: ShippingAddress | None = None


class PaymentFailed(EventData):
    event_type = "PaymentFailed"
    routing_key = "payment.failed"
    order_id: uuid.UUID
    reason: str


class ShippingCreated(EventData):
    event_type = "ShippingCreated"
    routing_key = "shipping.created"
    order_id: uuid.UUID
    shipment_id: uuid.UUID
    tracking_number: str


class OrderCompleted(EventData):
    event_type = "OrderCompleted"
    routing_key = "order.completed"
    order_id: uuid.UUID


class OrderCancelled(EventData):
    event_type = "OrderCancelled"
    routing_key = "order.cancelled"
    order_id: uuid.UUID
    reason: str


class StockReleased(EventData):
    event_type = "StockReleased"
    routing_key = "stock.released"
    order_id: uuid.UUID
    items: list[LineItem]


class PaymentRefunded(EventData):
    """A capture for an order that was cancelled meanwhile (a late success) is
    given back. An extension of the API.md contract."""

    event_type = "PaymentRefunded"
    routing_key = "payment.refunded"
    order_id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int = Field(ge=0)
    currency: str


# --- The orchestrated saga's commands and its one reply of its own ------------
#
# The orchestrator (services/order/saga.py) sends each participant a command
# on the participant's own queue. A forward command carries what the event
# that starts the same step under choreography carries (it is that model
# under another type), so a participant handles both with one function. The
# participant answers with the same events as under choreography (they are
# the replies), marked with the envelope's `sagamode`; only a compensation,
# which may change nothing, answers SagaStepCompensated besides.


class ReserveStock(OrderCreated):
    """Orchestrated: inventory, reserve the order's items (as on OrderCreated)."""

    event_type = "ReserveStock"
    routing_key = "stock.reserve"


class ChargePayment(StockReserved):
    """Orchestrated: payment, charge the order (as on StockReserved)."""

    event_type = "ChargePayment"
    routing_key = "payment.charge"


class CreateShipment(PaymentSucceeded):
    """Orchestrated: shipping, ship the paid order (as on PaymentSucceeded)."""

    event_type = "CreateShipment"
    routing_key = "shipment.create"


class ShipStock(EventData):
    """Orchestrated: inventory, the reserved items left with the shipment
    (as on ShippingCreated); sent as the saga completes, no reply awaited."""

    event_type = "ShipStock"
    routing_key = "stock.ship"
    order_id: uuid.UUID


# A compensation command carries what OrderCancelled carries (the order,
# the reason): it is that model under another type, as the forward ones are.


class ReleaseStock(OrderCancelled):
    """Orchestrated compensation: inventory, give the reservation back (as on
    OrderCancelled)."""

    event_type = "ReleaseStock"
    routing_key = "stock.release"


class RefundPayment(OrderCancelled):
    """Orchestrated compensation: payment, never charge this order, and
    refund a capture (as on OrderCancelled)."""

    event_type = "RefundPayment"
    routing_key = "payment.refund"


class CancelShipment(OrderCancelled):
    """Orchestrated compensation: shipping, never ship this order, and call
    a created shipment back (as on OrderCancelled)."""

    event_type = "CancelShipment"
    routing_key = "shipment.cancel"


class SagaStepCompensated(EventData):
    """Orchestrated: a participant's reply to a compensation command, sent
    whether or not it had anything to undo; the orchestrator then compensates
    the step before."""

    event_type = "SagaStepCompensated"
    routing_key = "saga.step_compensated"
    order_id: uuid.UUID
    command: str  # the compensation command's type


class ProductCreated(EventData):
    event_type = "ProductCreated"
    routing_key = "product.created"
    sku: str
    name: str
    price_cents: int = Field(ge=0)
    currency: str
    initial_stock: int = Field(ge=0)


EVENT_MODELS: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        CartCheckedOut,
        OrderCreated,
        StockReserved,
        StockReservationFailed,
        PaymentSucceeded,
        PaymentFailed,
        ShippingCreated,
        OrderCompleted,
        OrderCancelled,
        StockReleased,
        PaymentRefunded,
        ProductCreated,
        ReserveStock,
        ChargePayment,
        CreateShipment,
        ShipStock,
        ReleaseStock,
        RefundPayment,
        CancelShipment,
        SagaStepCompensated,
    )
}
COMMANDS = frozenset(
    {"ReserveStock", "ChargePayment", "CreateShipment", "ShipStock"}
    | {"ReleaseStock", "RefundPayment", "CancelShipment"}
)
ORCHESTRATED = "orchestrated"  # the envelope's sagamode of an orchestrated saga's messages

D = TypeVar("D", bound=EventData)


class Envelope(InputModel, Generic[D]):
    """A CloudEvents 1.0 structured-mode event with shop's extensions."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    type: str
    source: str
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: D
    correlationid: str = Field(min_length=1, description="the saga: the order id")
    causationid: str | None = Field(
        default=None, description="id of the event that caused this one"
    )
    traceparent: str | None = Field(default=None, pattern=_TRACEPARENT.pattern)
    sagamode: Literal["orchestrated"] | None = Field(
        default=None,
        description="orchestrated: a message of a saga the order service's orchestrator "
        "runs (participants' choreography wiring leaves it alone); absent: choreographed",
    )
    sagadeadline: datetime | None = Field(
        default=None,
        description="on an orchestrator's command: when the timer that waits on its reply fires",
    )

    @property
    def routing_key(self) -> str:
        """The type's key; an orchestrated saga's event (a reply) goes out
        under ``<key>.orchestrated``, which only the orchestrator's queues
        (and the taps) are bound to: the participants' choreography queues
        never see it. A command keeps its own key."""
        key = EVENT_MODELS[self.type].routing_key
        if self.sagamode == ORCHESTRATED and self.type not in COMMANDS:
            return f"{key}.{ORCHESTRATED}"
        return key

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


@functools.cache
def envelope_of(model: type[EventData]) -> type[Envelope[Any]]:
    """``Envelope[model]``, parametrised once and kept. pydantic keeps
    parametrised generics in a weak cache: with no event of a type alive, a
    garbage collection dropped its class and the next event rebuilt class,
    schema and validator on the message's path (4 % of a paced service's
    samples; docs/performance-journal.md)."""
    return Envelope[model]  # type: ignore[valid-type]


class InvalidEvent(ValueError):
    """A message that is not a shop event; ``reason`` is a short machine code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_event(body: bytes) -> Envelope[Any]:
    """Parse and validate a message body into a typed envelope.

    Raises InvalidEvent with reason ``not_json``, ``not_an_envelope`` or
    ``unknown_type``; the message can then be dead-lettered with that reason.
    """
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", str(exc)) from None
    if not isinstance(raw, dict):
        raise InvalidEvent("not_an_envelope", f"expected a JSON object, got {type(raw).__name__}")
    event_type = raw.get("type")
    if not isinstance(event_type, str):
        raise InvalidEvent("not_an_envelope", "no string 'type' attribute")
    model = EVENT_MODELS.get(event_type)
    if model is None:
        raise InvalidEvent("unknown_type", f"no event type {event_type!r}")
    # One scan of the bytes instead of a walk of every string at every level.
    context = TEXT_CHECKED if json_text_is_clean(body) else None
    try:
        return envelope_of(model).model_validate(raw, context=context)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidEvent("not_an_envelope", errors) from None


def _trace_parent(cause: Envelope[Any] | None) -> str:
    """The event's creation context: the span running now when tracing
    records (services/common/tracing.py), else the cause's trace with a
    span id of its own."""
    current = current_traceparent()
    if current is not None:
        return current
    span_id = os.urandom(8).hex()
    if cause is not None and cause.traceparent:
        match = _TRACEPARENT.match(cause.traceparent)
        if match:
            return f"00-{match.group(1)}-{span_id}-{match.group(3)}"
    return f"00-{os.urandom(16).hex()}-{span_id}-01"


def new_event(
    data: D,
    *,
    source: str,
    correlation_id: str | uuid.UUID | None = None,
    cause: Envelope[Any] | None = None,
    subject: str | None = None,
    saga_mode: str | None = None,
    saga_deadline: datetime | None = None,
) -> Envelope[D]:
    """Build an envelope for ``data``. The saga id, its mode and the trace
    follow ``cause`` when one is given; otherwise ``correlation_id`` is
    required (and ``saga_mode`` says an orchestrated saga's)."""
    if correlation_id is None:
        if cause is None:
            raise ValueError("an event needs a correlation id or a cause to inherit it from")
        correlation_id = cause.correlationid
    # Parametrised so the data serialises as its own type, not as EventData.
    envelope_type: type[Envelope[D]] = envelope_of(type(data))
    return envelope_type(
        id=uuid.uuid4(),
        type=data.event_type,
        source=source,
        time=datetime.now(UTC),
        subject=subject,
        data=data,
        correlationid=str(correlation_id),
        causationid=str(cause.id) if cause is not None else None,
        traceparent=_trace_parent(cause),
        sagamode=saga_mode or (cause.sagamode if cause is not None else None),
        sagadeadline=saga_deadline,
    )
