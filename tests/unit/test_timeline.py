"""The timeline model: ordering, causes, duplicates, outcome, what it waits on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from shopctl.observe.timeline import Timeline, TimelineEvent, TimelineStore, parse_event

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ORDER = str(uuid.uuid4())


def body(kind: str, at: float, cause: str | None = None, **data: object) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "type": kind,
        "source": "test",
        "time": (T0 + timedelta(seconds=at)).isoformat(),
        "correlationid": ORDER,
        "data": {"order_id": ORDER, **data},
    }
    if cause:
        envelope["causationid"] = cause
    return event_id, orjson.dumps(envelope)


def test_events_are_ordered_by_their_time_and_linked_to_their_causes():
    store = TimelineStore()
    checked_out, raw = body("CartCheckedOut", 0.0)
    created, raw2 = body("OrderCreated", 0.05, checked_out)
    _, raw3 = body("StockReserved", 0.12, created)
    for message in (raw3, raw, raw2):  # arriving out of order, as queues allow
        store.add_message(message, "x")
    timeline = store.get(ORDER)
    assert timeline is not None
    assert timeline.types == ["CartCheckedOut", "OrderCreated", "StockReserved"]
    last = timeline.events[-1]
    assert timeline.cause(last).id == created
    assert round(timeline.step_time(last), 3) == 0.07
    assert round(timeline.offset(last), 3) == 0.12
    waiting = timeline.waiting_on()
    assert (waiting.event, waiting.part, waiting.after) == (
        "PaymentSucceeded",
        "payment",
        "StockReserved",
    )


def test_the_same_event_twice_is_one_event_delivered_twice():
    timeline = Timeline(ORDER)
    _, raw = body("CartCheckedOut", 0.0)
    first = parse_event(raw, "cart.checked_out")
    timeline.add(first)
    again = timeline.add(parse_event(raw, "cart.checked_out"))
    assert len(timeline) == 1 and again.deliveries == 2


def test_a_declined_payment_ends_cancelled_with_its_compensation():
    store = TimelineStore()
    steps = [
        ("CartCheckedOut", {}),
        ("OrderCreated", {}),
        ("StockReserved", {}),
        ("PaymentFailed", {"reason": "card_declined"}),
        ("StockReleased", {}),
        ("OrderCancelled", {"reason": "payment_declined"}),
    ]
    cause = None
    for at, (kind, data) in enumerate(steps):
        cause, raw = body(kind, at * 0.1, cause, **data)
        store.add_message(raw, "x")
    timeline = store.get(ORDER)
    assert timeline.outcome == "CANCELLED (payment_declined)"
    assert timeline.waiting_on() is None
    assert [e.type for e in timeline if e.is_compensation] == ["StockReleased", "OrderCancelled"]


def test_a_saga_stuck_after_checkout_waits_on_the_order_service():
    store = TimelineStore()
    store.add_message(body("CartCheckedOut", 0.0)[1], "cart.checked_out")
    waiting = store.get(ORDER).waiting_on()
    assert (waiting.event, waiting.part) == ("OrderCreated", "order")
    assert waiting.age(now=(T0 + timedelta(seconds=12)).timestamp()) == 12


def test_what_is_not_an_envelope_is_left_out():
    store = TimelineStore()
    for raw in (b"not json", b"[1]", b'{"type": "OrderCreated"}', b'{"id": 1, "type": "x"}'):
        assert store.add_message(raw, "x") is None
    assert len(store) == 0


def test_an_orchestrated_saga_waits_on_a_participant_reply_with_the_orchestrator_timer():
    """An orchestrated saga's timeline: after ChargePayment, the orchestrator
    waits on payment's reply, and the command says when its timer fires."""
    store = TimelineStore()
    cause = None
    for at, kind in enumerate(["CartCheckedOut", "OrderCreated", "ReserveStock"]):
        cause, raw = body(kind, at * 0.01, cause)
        store.add_message(_orchestrated(raw, None), "x")
    cause, raw = body("StockReserved", 0.05, cause)
    store.add_message(_orchestrated(raw, None), "x")
    waiting = store.get(ORDER).waiting_on()
    assert (waiting.event, waiting.part) == ("ChargePayment", "order")  # the orchestrator's move
    _, raw = body("ChargePayment", 0.06, cause)
    store.add_message(_orchestrated(raw, T0 + timedelta(seconds=30.06)), "x")
    timeline = store.get(ORDER)
    assert timeline.orchestrated
    waiting = timeline.waiting_on()
    assert (waiting.event, waiting.part, waiting.after) == (
        "PaymentSucceeded",
        "payment",
        "ChargePayment",
    )
    now = (T0 + timedelta(seconds=2.16)).timestamp()
    assert waiting.describe(now) == (
        "orchestrator: waiting on the payment reply to ChargePayment since 2.1 s; "
        "its timer fires in 27.9 s"
    )
    # the same events choreographed wait on another part: the mode decides
    plain = TimelineStore()
    for event in timeline:
        plain.add(TimelineEvent(**{**event.__dict__, "saga_mode": None, "deadline": None}))
    assert (
        plain.get(ORDER).waiting_on().describe(now)
        == "waiting on PaymentSucceeded from payment, 2.1 s"
    )


def _orchestrated(raw: bytes, deadline: datetime | None) -> bytes:
    envelope = orjson.loads(raw)
    envelope["sagamode"] = "orchestrated"
    if deadline is not None:
        envelope["sagadeadline"] = deadline.isoformat()
    return orjson.dumps(envelope)


def test_an_orchestrated_saga_cancelled_waits_on_its_compensation_reply():
    """Over for the customer (CANCELLED), but the orchestrator still waits
    on payment's answer to RefundPayment; once answered, nothing is pending."""
    store = TimelineStore()
    cause = None
    for at, kind in enumerate(["CartCheckedOut", "OrderCreated", "ReserveStock", "StockReserved"]):
        cause, raw = body(kind, at * 0.01, cause)
        store.add_message(_orchestrated(raw, None), "x")
    cause, raw = body("OrderCancelled", 30.0, cause, reason="timeout")
    store.add_message(_orchestrated(raw, None), "x")
    refund, raw = body("RefundPayment", 30.01, cause, reason="timeout")
    store.add_message(_orchestrated(raw, T0 + timedelta(seconds=40.01)), "x")
    timeline = store.get(ORDER)
    assert timeline.outcome == "CANCELLED (timeout)"
    pending = timeline.waiting_on()
    assert (pending.event, pending.part, pending.after) == (
        "SagaStepCompensated",
        "payment",
        "RefundPayment",
    )
    now = (T0 + timedelta(seconds=33.01)).timestamp()
    assert pending.describe(now).endswith("since 3.0 s; its timer fires in 7.0 s")
    _, raw = body("SagaStepCompensated", 30.05, refund, command="RefundPayment")
    store.add_message(_orchestrated(raw, None), "x")
    assert store.get(ORDER).waiting_on() is None
