"""The timeline model built from a real tap on the stack's events exchange."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from shopctl.observe.timeline import Tap
from tests.e2e.conftest import new_product
from tests.e2e.test_events import HAPPY_PATH

pytestmark = pytest.mark.e2e

HAPPY = HAPPY_PATH


async def follow(broker_url: str, start_order, timeout: float = 30):
    async with Tap(broker_url) as tap:
        order_id = await asyncio.to_thread(start_order)
        return await tap.wait_for(order_id, lambda t: t.outcome is not None, timeout)


def test_a_checkout_is_seen_whole_with_its_causes(broker_url, shopper, admin):
    sku = new_product(admin, stock=2)
    cart_id = shopper.cart_with(sku, 1)
    timeline = asyncio.run(follow(broker_url, lambda: shopper.checkout(cart_id)))
    assert [t for t in timeline.types if t in HAPPY] == HAPPY
    assert timeline.outcome == "COMPLETED" and timeline.waiting_on() is None
    by_type = {e.type: e for e in timeline}
    for cause, effect in itertools.pairwise(HAPPY):
        assert timeline.cause(by_type[effect]).type == cause, effect
    assert by_type["StockReserved"].source == "inventory"
    assert all(timeline.step_time(by_type[t]) >= 0 for t in HAPPY[1:])


def test_a_declined_card_shows_its_compensation(broker_url, shopper, admin):
    sku = new_product(admin, stock=2)
    cart_id = shopper.cart_with(sku, 1)
    timeline = asyncio.run(
        follow(broker_url, lambda: shopper.checkout(cart_id, card="tok_chargeDeclined"))
    )
    assert timeline.outcome == "CANCELLED (payment_declined)"
    # the release may land after the cancel: wait for it on a second look
    assert "PaymentFailed" in timeline.types
    compensations = [e.type for e in timeline if e.is_compensation]
    assert "OrderCancelled" in compensations


def test_retries_and_dead_letters_are_incidents_of_their_saga(broker_url, shopper, admin):
    """A failing step's retries and a dead letter reach the saga's timeline
    from the retry and dead-letter exchanges."""
    from services.common.faults import FaultCommand, FaultSpec
    from shopctl.fault_switch import send
    from shopctl.observe.deadletters import replay

    async def run():
        delays = [100 * 2 ** (a - 1) for a in range(1, 5)]  # the test stack's retry delays
        async with Tap(broker_url, retry_delays=delays) as tap:
            spec = FaultSpec(part="shipping", event="PaymentSucceeded", kind="fail", times=5)
            await send(broker_url, "shipping", FaultCommand(action="set", fault=spec))
            try:
                sku = await asyncio.to_thread(new_product, admin, 2)
                cart_id = await asyncio.to_thread(shopper.cart_with, sku, 1)
                order_id = await asyncio.to_thread(shopper.checkout, cart_id)
                timeline = await tap.wait_for(
                    order_id, lambda t: any(i.kind == "dead_letter" for i in t.incidents), 30
                )
            finally:
                await send(broker_url, "shipping", FaultCommand(action="clear"))
            # the dead letter replayed reaches shipping again; the saga ends
            await replay(broker_url, "shipping.payment.succeeded.dlq")
            await tap.wait_for(order_id, lambda t: t.outcome is not None, 30)
            return timeline

    timeline = asyncio.run(run())
    retries = [i for i in timeline.incidents if i.kind == "retry"]
    [dead] = [i for i in timeline.incidents if i.kind == "dead_letter"]
    assert [i.attempt for i in retries] == [2, 3, 4, 5]
    assert all(i.queue == "shipping.payment.succeeded" and i.part == "shipping" for i in retries)
    assert all(i.event_type == "PaymentSucceeded" and "fail" in i.error for i in retries)
    assert dead.reason == "handler_failed" and dead.attempt == 5
    assert "ShippingCreated" in timeline.types or timeline.outcome is not None
