"""`shopctl dlq` against the stack: a poison message is dead-lettered by its
consumer, listed, shown with why, replayed onto its own queue (where the
consumer takes it again) and purged."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import pytest

from shopctl.observe.deadletters import depths, show
from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e

DLQ = "inventory.order.created.dlq"


async def publish_poison(broker_url: str) -> None:
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("shop.events")
        await exchange.publish(
            aio_pika.Message(b'{"not": "an envelope"}', message_id="poison-1"),
            routing_key="order.created",
        )


def wait_depth(broker_url: str, queue: str, expected: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (found := asyncio.run(depths(broker_url, [queue]))[queue]) != expected:
        assert time.monotonic() < deadline, f"{queue} holds {found}, expected {expected}"
        time.sleep(0.2)


def test_list_show_replay_purge(stack, broker_url):
    env = {"SHOP_BROKER_URL": broker_url}
    asyncio.run(publish_poison(broker_url))
    wait_depth(broker_url, DLQ, 1)

    listed = shopctl(env, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if DLQ in line)
    assert row.split("│")[2].strip() == "1"
    assert "1 dead letter" in listed.stdout

    shown = shopctl(env, "dlq", "show", DLQ)
    assert shown.returncode == 0, shown.stderr
    assert "from inventory.order.created" in shown.stdout
    assert "reason: not_an_envelope" in shown.stdout
    wait_depth(broker_url, DLQ, 1)  # showing leaves it in place

    replayed = shopctl(env, "dlq", "replay", DLQ)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 to inventory.order.created" in replayed.stdout
    # its consumer took it again (and, poison still, dead-lettered it again)
    wait_depth(broker_url, DLQ, 1)
    [again] = asyncio.run(show(broker_url, DLQ))
    assert again.headers.get("x-shop-replayed") is True and again.message_id == "poison-1"

    assert shopctl(env, "dlq", "purge", DLQ).returncode == 2  # needs --yes
    purged = shopctl(env, "dlq", "purge", DLQ, "--yes")
    assert purged.returncode == 0 and "purged 1" in purged.stdout
    wait_depth(broker_url, DLQ, 0)


def test_a_queue_that_is_not_a_dead_letter_queue_is_one_sentence(broker_url):
    result = shopctl({"SHOP_BROKER_URL": broker_url}, "dlq", "show", "inventory.order.created")
    assert result.returncode == 1
    assert result.stderr.startswith("error: 'inventory.order.created' is not a dead-letter queue")
    assert "Traceback" not in result.stderr


def test_inject_publishes_one_checked_event_that_its_consumer_takes(stack, broker_url, admin):
    from shopctl.observe.timeline import Tap
    from tests.e2e.conftest import new_product, stock_of

    sku = new_product(admin, stock=5)
    env = {"SHOP_BROKER_URL": broker_url}

    async def inject_and_follow() -> list[str]:
        async with Tap(broker_url) as tap:
            order = str(uuid.uuid4())
            data = (
                f'{{"order_id": "{order}", "customer_id": "{order}", '
                f'"items": [{{"sku": "{sku}", "quantity": 2, "unit_price_cents": 100}}], '
                '"total_cents": 200, "currency": "EUR"}'
            )
            done = await asyncio.to_thread(shopctl, env, "inject", "OrderCreated", "--data", data)
            assert done.returncode == 0, done.stderr
            assert "published OrderCreated" in done.stdout and f"saga {order}" in done.stdout
            timeline = await tap.wait_for(order, lambda t: "StockReleased" in t.types, 20)
            return timeline.types

    types = asyncio.run(inject_and_follow())
    assert types[:2] == ["OrderCreated", "StockReserved"]  # inventory took it
    # Made to API.md's table alone, it carries no card: payment declines it
    # and inventory gives the stock back.
    assert "PaymentFailed" in types
    assert stock_of(admin.client, sku)["reserved"] == 0

    bad = shopctl(env, "inject", "OrderCreated", "--data", '{"order_id": "x"}')
    assert bad.returncode == 2 and bad.stderr.startswith(
        "error: --data is not a valid OrderCreated"
    )
    unknown = shopctl(env, "inject", "NoSuchEvent", "--data", "{}")
    assert unknown.returncode == 2 and "no event type 'NoSuchEvent'" in unknown.stderr
