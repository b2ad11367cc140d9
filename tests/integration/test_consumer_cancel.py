"""C7: the broker cancels a consumer (its queue was deleted under it)."""

from __future__ import annotations

import uuid

from services.common.consumer import Subscription
from services.common.events import OrderCompleted, new_event
from tests.conftest import eventually
from tests.integration.test_consumer import Service, count_effect


async def test_consumer_cancelled_by_the_broker_subscribes_again(settings, amqp):
    async with Service(settings, Subscription(OrderCompleted, count_effect)) as service:
        queue = service.queue("order.completed")
        channel = await amqp.channel()
        await channel.queue_delete(queue)  # the broker sends basic.cancel

        async def consuming_again() -> bool:
            counts = await service.runtime.consumers.consumer_counts()
            return counts.get(queue, 0) > 0

        await eventually(consuming_again, timeout=30)
        order_id = uuid.uuid4()
        event = new_event(OrderCompleted(order_id=order_id), source="t", correlation_id=order_id)
        await service.publish(event.to_json(), "order.completed", message_id=str(event.id))
        assert await eventually(lambda: service.effects(order_id), timeout=15) == 1
        assert (await service.runtime.readiness())["consumers"] == "ok"
