"""A flood's bench follows only the ends of its orders live and reads their
steps back from the stack's event stream after the run (the real broker)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import orjson

from services.common.broker import Broker
from services.common.settings import ServiceSettings
from services.gateway.stream import SagaBroadcaster
from shopctl.bench.flood import read_steps_back
from shopctl.observe.timeline import TimelineStore
from tests.conftest import drop_stream


async def publish(
    broker: Broker, saga: str, kind: str, at: float | None = None, cause: str | None = None
) -> str:
    event_id = str(uuid.uuid4())
    body = orjson.dumps(
        {
            "id": event_id,
            "type": kind,
            "correlationid": saga,
            "causationid": cause,
            "time": datetime.fromtimestamp(at or time.time(), UTC).isoformat(),
        }
    )
    await broker.publish_event(body, "test.steps", message_id=event_id, event_type=kind)
    return event_id


async def test_the_steps_of_the_benchs_orders_are_read_back_from_the_stream(
    settings: ServiceSettings, broker_url: str
) -> None:
    broker = Broker(settings)
    await broker.connect()
    stream = f"test.steps.{uuid.uuid4().hex[:8]}"
    broadcaster = SagaBroadcaster(broker, queue_name=stream)  # declares and binds it
    ours, other = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        await broadcaster.start()
        started = time.time()
        checked_out = await publish(broker, ours, "CartCheckedOut", at=started)
        created = await publish(broker, ours, "OrderCreated", at=started + 0.25, cause=checked_out)
        reserved = await publish(broker, ours, "StockReserved", at=started + 0.5, cause=created)
        steps = [checked_out, created, reserved]
        await publish(broker, ours, "OrderCompleted")  # the live tap had it already
        await publish(broker, other, "OrderCreated")  # not one of the bench's orders

        store = TimelineStore()
        added, first = await read_steps_back(
            broker_url, store, {ours}, since=started, idle_s=0.5, stream=stream
        )
        assert added == 3
        timeline = store.get(ours)
        assert timeline is not None and [e.id for e in timeline] == steps
        assert store.get(other) is None
        assert first is not None and abs(first - started) < 0.001
        # a step's time is by the emitters' clocks, whenever it was read
        step = next(e for e in timeline if e.type == "OrderCreated")
        assert abs((timeline.step_time(step) or 0) - 0.25) < 0.001

        # no such stream: nothing read, and said so
        assert await read_steps_back(
            broker_url, TimelineStore(), {ours}, since=started, stream=f"{stream}.missing"
        ) == (0, None)
    finally:
        await drop_stream(broker, broadcaster)
