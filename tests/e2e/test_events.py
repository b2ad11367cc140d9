"""The saga as it appears on shop.events, and as the live stream shows it."""

from __future__ import annotations

import asyncio
import itertools
import threading

import aio_pika
import httpx
import orjson
import pytest

from tests.e2e.conftest import new_product

pytestmark = pytest.mark.e2e

HAPPY_PATH = [
    "CartCheckedOut",
    "OrderCreated",
    "StockReserved",
    "PaymentSucceeded",
    "ShippingCreated",
    "OrderCompleted",
]


async def test_one_orders_events_come_in_saga_order_with_a_causation_chain(
    broker_url, shopper, admin
):
    sku = new_product(admin, stock=2)
    cart_id = shopper.cart_with(sku, 1)
    connection = await aio_pika.connect_robust(broker_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind("shop.events", "#")
        order_id = await asyncio.to_thread(shopper.checkout, cart_id)
        events: list[dict] = []
        async with asyncio.timeout(30), queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                event = orjson.loads(message.body)
                if event["correlationid"] == order_id:
                    events.append(event)
                if event["type"] == "OrderCompleted" and event["correlationid"] == order_id:
                    break
    finally:
        await connection.close()

    saga = [e for e in events if e["type"] in HAPPY_PATH]
    assert [e["type"] for e in saga] == HAPPY_PATH
    assert {e["correlationid"] for e in saga} == {order_id}
    assert saga[0].get("causationid") is None
    for cause, effect in itertools.pairwise(saga):
        assert effect["causationid"] == cause["id"], (cause["type"], effect["type"])
    assert len({e["traceparent"].split("-")[1] for e in saga}) == 1  # one trace
    assert [e["source"] for e in saga] == [
        "cart",
        "order",
        "inventory",
        "payment",
        "shipping",
        "order",
    ]


def test_live_stream_shows_the_snapshot_then_each_step(stack, shopper, admin):
    sku = new_product(admin, stock=2)
    cart_id = shopper.cart_with(sku, 1)
    order_id = shopper.checkout(cart_id)
    seen: list[str] = []
    with (
        httpx.Client(base_url=stack.gateway, timeout=30) as client,
        client.stream("GET", f"/api/orders/{order_id}/stream", headers=shopper.headers) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event:"):
                seen.append(line.split(":", 1)[1].strip())
    # The stream ends by itself after the terminal event (or at once if the
    # snapshot already shows the order done).
    assert seen[0] == "snapshot"
    assert seen[-1] in ("OrderCompleted", "snapshot")
    steps = seen[1:]
    assert steps == [s for s in HAPPY_PATH if s in steps]  # in saga order


def test_stream_of_an_order_that_is_still_running_follows_it_to_the_end(stack, shopper, admin):
    sku = new_product(admin, stock=1)
    cart_id = shopper.cart_with(sku, 1)
    lines: list[str] = []
    opened = threading.Event()

    stack.stop("payment")  # hold the saga at STOCK_RESERVED while the stream opens
    try:
        order_id = shopper.checkout(cart_id)

        def read() -> None:
            with (
                httpx.Client(base_url=stack.gateway, timeout=60) as client,
                client.stream(
                    "GET", f"/api/orders/{order_id}/stream", headers=shopper.headers
                ) as stream,
            ):
                opened.set()
                lines.extend(line for line in stream.iter_lines() if line.startswith("event:"))

        reader = threading.Thread(target=read)
        reader.start()
        assert opened.wait(10)
    finally:
        stack.start_part("payment")
    reader.join(timeout=60)
    assert not reader.is_alive()
    events = [line.split(":", 1)[1].strip() for line in lines]
    assert events[0] == "snapshot"
    assert "PaymentSucceeded" in events and events[-1] == "OrderCompleted"


def test_a_cancelled_orders_stream_carries_its_compensation(stack, shopper, admin):
    """The stream stays a moment after OrderCancelled: StockReleased follows it."""
    sku = new_product(admin, stock=2)
    order_id = shopper.checkout(shopper.cart_with(sku, 1), card="tok_chargeDeclined")
    seen: list[str] = []
    with (
        httpx.Client(base_url=stack.gateway, timeout=30) as client,
        client.stream("GET", f"/api/orders/{order_id}/stream", headers=shopper.headers) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("event:"):
                seen.append(line.split(":", 1)[1].strip())
    # however quick the decline, this gateway saw the saga's first steps and
    # waits for the rest (the order's row is over before its last events go out)
    assert "OrderCancelled" in seen and "StockReleased" in seen, seen
    assert seen.index("StockReleased") > seen.index("PaymentFailed")
