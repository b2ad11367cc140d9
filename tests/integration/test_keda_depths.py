"""KEDA's rule (deploy/kubernetes/components/keda) on the real broker's queue
depths: messages waiting and messages delivered but not acknowledged both
count, the dead letters do not, and the replicas follow ceil(depth / target)
within the ScaledObject's bounds."""

from __future__ import annotations

import math
import uuid
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest

from shopctl.k8s.manifests import MAX_REPLICAS, MIN_REPLICAS, QUEUE_TARGET_PER_REPLICA, scaling
from shopctl.k8s.scaling import depths_from_prometheus, read_depths, replicas_wanted
from shopctl.runtimes.prometheus import RABBITMQ_METRICS_PORT
from shopctl.stack import part
from tests.conftest import eventually

PLUGIN = f"http://127.0.0.1:{RABBITMQ_METRICS_PORT}"


def test_the_rule_is_kedas_formula_within_the_bounds():
    rule = scaling(part("inventory"))
    assert rule.keda_replicas(0, 5) == MIN_REPLICAS
    assert rule.keda_replicas(QUEUE_TARGET_PER_REPLICA * 3, 2) == 3
    assert rule.keda_replicas(QUEUE_TARGET_PER_REPLICA * 3 + 1, 2) == 4
    assert rule.keda_replicas(10**6, 2) == MAX_REPLICAS
    assert scaling(part("gateway")).queue_pattern is None  # the gateway scales on CPU


def test_the_plugins_text_is_read_per_virtual_host():
    text = (
        "# TYPE rabbitmq_detailed_queue_messages gauge\n"
        'rabbitmq_detailed_queue_messages_ready{vhost="/",queue="order.payment.failed"} 9\n'
        'rabbitmq_detailed_queue_messages{vhost="/",queue="order.payment.failed"} 12\n'
        'rabbitmq_detailed_queue_messages{vhost="other",queue="order.payment.failed"} 500\n'
    )
    assert depths_from_prometheus(text) == {"order.payment.failed": 12}


async def test_depths_count_unacknowledged_messages_and_not_dead_letters(broker_url, amqp):
    if not _plugin_answers():
        pytest.skip(f"RabbitMQ's prometheus plugin does not answer on {PLUGIN}")
    vhost = unquote(urlsplit(broker_url).path[1:])
    # inventory's ScaledObject counts `inventory.<word>.<word>`: one of its own
    queue = f"inventory.keda_{''.join(c for c in uuid.uuid4().hex if c.isalpha())[:8]}.test"
    channel = await amqp.channel()
    declared = await channel.declare_queue(
        queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    dlq = await channel.declare_queue(
        f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"}
    )
    waiting = 3 * QUEUE_TARGET_PER_REPLICA + 10
    for _ in range(waiting):
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), queue)
    for _ in range(50):
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), dlq.name)
    # a consumer holds 20 of them, unacknowledged (AMQP's count leaves them out)
    holder = await amqp.channel()
    await holder.set_qos(prefetch_count=20)
    held: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        held.append(message)

    await (await holder.get_queue(queue)).consume(hold)
    await eventually(lambda: len(held) == 20, timeout=10)
    ready = (await channel.declare_queue(queue, passive=True)).declaration_result.message_count

    def read() -> bool:
        depths = read_depths(PLUGIN, vhost)
        return depths.get(queue) == waiting and depths.get(f"{queue}.dlq") == 50

    # the plugin refreshes its figures every few seconds
    await eventually(read, timeout=20, interval=0.5)
    depths = read_depths(PLUGIN, vhost)
    # what AMQP (and KEDA's amqp protocol) would see: never the held twenty
    assert ready <= waiting - 20
    inventory_depth, replicas = replicas_wanted(depths)["inventory"]
    assert inventory_depth >= waiting  # the .dlq's fifty not among them
    assert replicas == max(MIN_REPLICAS, math.ceil(inventory_depth / QUEUE_TARGET_PER_REPLICA))
    await holder.close()
    await declared.delete(if_unused=False, if_empty=False)
    await dlq.delete(if_unused=False, if_empty=False)


def _plugin_answers() -> bool:
    import httpx

    try:
        return httpx.get(f"{PLUGIN}/metrics", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
