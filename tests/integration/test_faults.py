"""Faults switched on the control exchange, obeyed by the consumer runner and
the relay of a service in sandbox mode; refused where nothing listens."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.consumer import Subscription
from services.common.events import OrderCompleted
from services.common.faults import FaultCommand, FaultSpec
from shopctl.errors import ShopError
from shopctl.fault_switch import send
from tests.conftest import eventually
from tests.integration.test_consumer import Service, completed_event, count_effect


def fault(settings, kind: str, **extra) -> FaultSpec:
    return FaultSpec(part=settings.service_name, event="OrderCompleted", kind=kind, **extra)


async def switch(settings, spec: FaultSpec) -> None:
    await send(settings.broker_url, spec.part, FaultCommand(action="set", fault=spec))


async def sandbox(settings, coroutine_factory):
    sandboxed = settings.model_copy(update={"fault_injection": True})
    async with Service(sandboxed, Subscription(OrderCompleted, count_effect)) as service:
        await coroutine_factory(service)


async def wait_switched(service, count: int = 1) -> None:
    await eventually(lambda: len(service.runtime.faults.faults) >= count)


async def test_fail_twice_then_handled_once(settings):
    async def run(service):
        await switch(service.settings, fault(service.settings, "fail", times=2))
        await wait_switched(service)
        event = completed_event()
        await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        await eventually(lambda: service.effects(event.data.order_id), timeout=20)
        queue = service.queue("order.completed")
        assert service.consumed(queue, "retried") == 2  # the failures rolled back
        assert await service.effects(event.data.order_id) == 1

    await sandbox(settings, run)


async def test_drop_for_one_order_only(settings):
    async def run(service):
        dropped, kept = completed_event(), completed_event()
        # the order as trace and the TUI show it: its id's first 8 characters
        only = fault(service.settings, "drop", order=dropped.correlationid[:8])
        await switch(service.settings, only)
        await wait_switched(service)
        for event in (dropped, kept):
            await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        await eventually(lambda: service.effects(kept.data.order_id))
        await eventually(lambda: service.consumed(service.queue("order.completed"), "dropped"))
        assert await service.effects(dropped.data.order_id) == 0

    await sandbox(settings, run)


async def test_lost_ack_and_duplicate_take_effect_once(settings):
    async def run(service):
        await switch(service.settings, fault(service.settings, "lose_ack", times=1))
        await switch(service.settings, fault(service.settings, "duplicate", times=1))
        await wait_switched(service, 2)
        first, second = completed_event(), completed_event()
        for event in (first, second):
            await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        queue = service.queue("order.completed")
        # each fault fired once; the extra deliveries were seen as duplicates.
        # The two faults may both fire on the first event: its two extra
        # deliveries are then no sign of the second's, handled beside them
        # (on a busy machine, behind a new database connection), so that is
        # waited for too.
        await eventually(lambda: service.consumed(queue, "duplicate") >= 2, timeout=20)
        await eventually(lambda: service.effects(second.data.order_id), timeout=20)
        assert service.consumed(queue, "ack_lost") == 1
        assert await service.effects(first.data.order_id) == 1
        assert await service.effects(second.data.order_id) == 1

    await sandbox(settings, run)


async def test_delay_holds_the_handling_back(settings):
    async def run(service):
        await switch(service.settings, fault(service.settings, "delay", ms=1500))
        await wait_switched(service)
        event = completed_event()
        started = time.monotonic()
        await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        await eventually(lambda: service.effects(event.data.order_id))
        assert time.monotonic() - started >= 1.5
        await send(
            service.settings.broker_url, service.settings.service_name, FaultCommand(action="clear")
        )
        await eventually(lambda: not service.runtime.faults.faults)

    await sandbox(settings, run)


async def test_publish_twice_sends_one_event_two_times(settings, probe_factory):
    async def run(service):
        probe = await probe_factory("order.completed")
        spec = FaultSpec(
            part=service.settings.service_name,
            event="OrderCompleted",
            kind="publish_twice",
            times=1,
        )
        await switch(service.settings, spec)
        await wait_switched(service)
        async with service.runtime.unit_of_work() as uow:
            uow.emit(OrderCompleted(order_id=completed_event().data.order_id), correlation_id="x")
        messages = await probe.wait_for(2)
        assert len({m.message_id for m in messages}) == 1  # the same event, twice

    await sandbox(settings, run)


async def test_a_switch_outside_sandbox_mode_is_refused(settings):
    # the service runs, but not in sandbox mode: nothing listens for faults
    async with Service(settings, Subscription(OrderCompleted, count_effect)) as service:
        assert service.runtime.faults is None
        with pytest.raises(ShopError) as refused:
            await switch(settings, fault(settings, "drop"))
        assert refused.value.message.startswith(
            f"refused: no {settings.service_name} process listens for faults"
        )
        await asyncio.sleep(0)
