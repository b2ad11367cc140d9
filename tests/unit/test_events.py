"""The envelope and event models: parsing, validation, the saga's ids."""

from __future__ import annotations

import uuid

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import (
    EVENT_MODELS,
    CartCheckedOut,
    InvalidEvent,
    OrderCancelled,
    OrderCompleted,
    decode_event,
    new_event,
)
from services.common.settings import ServiceSettings


def test_every_event_of_the_contract_has_a_model_and_a_dotted_routing_key():
    assert set(EVENT_MODELS) == {
        "CartCheckedOut",
        "OrderCreated",
        "StockReserved",
        "StockReservationFailed",
        "PaymentSucceeded",
        "PaymentFailed",
        "ShippingCreated",
        "OrderCompleted",
        "OrderCancelled",
        "StockReleased",
        "PaymentRefunded",
        "ProductCreated",
        # the orchestrated saga's commands and its compensation reply
        "ReserveStock",
        "ChargePayment",
        "CreateShipment",
        "ShipStock",
        "ReleaseStock",
        "RefundPayment",
        "CancelShipment",
        "SagaStepCompensated",
    }
    keys = [m.routing_key for m in EVENT_MODELS.values()]
    assert len(set(keys)) == len(keys)
    assert all(k == k.lower() and k.count(".") == 1 for k in keys)


def test_round_trip_keeps_every_attribute_and_types_the_data():
    order_id = uuid.uuid4()
    event = new_event(OrderCompleted(order_id=order_id), source="order", correlation_id=order_id)
    decoded = decode_event(event.to_json())
    assert decoded == event
    assert isinstance(decoded.data, OrderCompleted)
    raw = orjson.loads(event.to_json())
    assert raw["specversion"] == "1.0"
    assert raw["correlationid"] == str(order_id)
    assert "causationid" not in raw  # a saga's first event has no cause


def test_an_event_caused_by_another_inherits_saga_and_trace():
    cause = new_event(OrderCompleted(order_id=uuid.uuid4()), source="a", correlation_id="saga-1")
    effect = new_event(
        OrderCancelled(order_id=uuid.uuid4(), reason="timeout"), source="b", cause=cause
    )
    assert effect.correlationid == "saga-1"
    assert effect.causationid == str(cause.id)
    assert effect.traceparent and cause.traceparent
    assert effect.traceparent.split("-")[1] == cause.traceparent.split("-")[1]
    assert effect.traceparent.split("-")[2] != cause.traceparent.split("-")[2]


def test_an_event_without_saga_is_refused():
    with pytest.raises(ValueError, match="correlation id"):
        new_event(OrderCompleted(order_id=uuid.uuid4()), source="a")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not_json"),
        (b'"a string"', "not_an_envelope"),
        (b'{"data": {}}', "not_an_envelope"),
        (b'{"type": "Teleported", "data": {}}', "unknown_type"),
        (b'{"type": "OrderCompleted", "id": "x", "data": {"order_id": "nope"}}', "not_an_envelope"),
    ],
)
def test_invalid_messages_name_their_reason(body, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode_event(body)
    assert caught.value.reason == reason


def test_cart_checked_out_validates_its_items():
    with pytest.raises(ValueError):
        CartCheckedOut.model_validate(
            {
                "order_id": str(uuid.uuid4()),
                "cart_id": str(uuid.uuid4()),
                "customer_id": str(uuid.uuid4()),
                "items": [{"sku": "A", "quantity": 0}],
                "total_cents": 0,
                "currency": "EUR",
                "payment": {"card_token": "tok_visa"},
                "shipping_address": {
                    "name": "n",
                    "line1": "l",
                    "city": "c",
                    "postal_code": "p",
                    "country": "DE",
                },
            }
        )


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(body):
    try:
        decode_event(body)
    except InvalidEvent as exc:
        assert exc.reason in {"not_json", "not_an_envelope", "unknown_type"}


def test_retry_delays_grow_and_are_capped():
    settings = ServiceSettings(retry_base_delay_ms=100, retry_max_delay_ms=500)
    assert [settings.retry_delay_ms(a) for a in range(1, 6)] == [100, 200, 400, 500, 500]


def test_database_url_defaults_to_the_services_own_database():
    settings = ServiceSettings(service_name="order")
    assert settings.database_url.endswith("/shop_order")


def test_marking_sent_may_wait_only_a_small_part_of_the_lease():
    assert ServiceSettings(outbox_lease_s=10, outbox_mark_delay_s=2.5).outbox_mark_delay_s == 2.5
    with pytest.raises(ValueError, match="at most a quarter of outbox_lease_s"):
        ServiceSettings(outbox_lease_s=10, outbox_mark_delay_s=3)


def _cancelled_with(reason: str) -> bytes:
    order_id = uuid.uuid4()
    event = new_event(
        OrderCancelled(order_id=order_id, reason="x"), source="order", correlation_id=order_id
    )
    raw = orjson.loads(event.to_json())
    raw["data"]["reason"] = reason
    return orjson.dumps(raw)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # escaped NUL: valid JSON, not storable text
        (_cancelled_with("a\x00b"), "NUL"),
        # a lone surrogate, escaped: orjson refuses it
        (_cancelled_with("x").replace(b'"reason":"x"', b'"reason":"\\ud800"'), "surrogate"),
    ],
    ids=["nul", "surrogate"],
)
def test_an_event_with_text_postgresql_cannot_hold_is_refused(body, problem):
    assert (b"\\u0000" in body) == (problem == "NUL")
    with pytest.raises(InvalidEvent) as refused:
        decode_event(body)
    assert problem in refused.value.detail


def test_a_literal_backslash_u0000_is_text_and_is_kept():
    """The byte scan that spares walking the strings finds "\\u0000" here
    too; the walk then clears it."""
    reason = "C:\\u0000 is a path, not a NUL"
    body = _cancelled_with(reason)
    assert b"\\u0000" in body
    assert decode_event(body).data.reason == reason


def test_the_envelope_type_of_an_event_is_made_once_and_kept():
    """pydantic keeps parametrised generics in a weak cache: once nothing
    held ``Envelope[PaymentRefunded]``, a garbage collection dropped it and
    the next event rebuilt the class, schema and validator (4 % of a busy
    service's samples). ``envelope_of`` keeps each one."""
    import gc
    import weakref

    from services.common.events import PaymentRefunded

    order_id = uuid.uuid4()
    data = PaymentRefunded(order_id=order_id, payment_id=order_id, amount_cents=1, currency="EUR")
    body = new_event(data, source="payment", correlation_id=order_id).to_json()
    made = weakref.ref(type(decode_event(body)))
    gc.collect()
    assert made() is not None, "the envelope type was collected: the next event rebuilds it"
    assert type(decode_event(body)) is made()
