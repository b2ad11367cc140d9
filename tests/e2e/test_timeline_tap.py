"""The timeline model built from a real tap on the stack's events exchange."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from shopctl.timeline import Tap
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
