"""`shopctl fault` against the stack in sandbox mode, and refused outside it."""

from __future__ import annotations

import asyncio
import re

import pytest

from shopctl.observe.timeline import Tap
from tests.conftest import amqp_url
from tests.e2e.conftest import new_product
from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e


def test_a_failing_step_is_retried_and_the_saga_still_completes(stack, broker_url, shopper, admin):
    env = {"SHOP_BROKER_URL": broker_url}
    on = shopctl(env, "fault", "set", "payment", "StockReserved", "fail", "--times", "2")
    assert on.returncode == 0, on.stderr
    fault_id = re.search(r"fault (\w+) on", on.stdout).group(1)
    try:
        sku = new_product(admin, stock=3)
        cart_id = shopper.cart_with(sku, 1)

        async def follow():
            async with Tap(broker_url) as tap:
                order_id = await asyncio.to_thread(shopper.checkout, cart_id)
                return await tap.wait_for(order_id, lambda t: t.outcome is not None, 30)

        timeline = asyncio.run(follow())
        assert timeline.outcome == "COMPLETED"
        reserved = next(e for e in timeline if e.type == "StockReserved")
        paid = next(e for e in timeline if e.type == "PaymentSucceeded")
        # two failed attempts with retry delays (100 ms, 200 ms here) came between
        assert timeline.step_time(paid) >= 0.3 or paid.at - reserved.at >= 0.3
        log = (stack.config.log_dir / "payment.log").read_text()
        assert f"fault {fault_id} (fail) on StockReserved" in log
    finally:
        off = shopctl(env, "fault", "clear", "payment")
        assert off.returncode == 0 and "faults off on payment" in off.stdout


def test_bad_fault_words_are_usage_errors(broker_url):
    env = {"SHOP_BROKER_URL": broker_url}
    kind = shopctl(env, "fault", "set", "payment", "StockReserved", "explode")
    assert kind.returncode == 2 and "no fault kind 'explode'" in kind.stderr
    event = shopctl(env, "fault", "set", "payment", "NoSuchEvent", "drop")
    assert event.returncode == 2 and "no event type 'NoSuchEvent'" in event.stderr


def test_a_fault_where_nothing_runs_in_sandbox_mode_is_refused(vhost):
    # the integration tests' virtual host: no part of a stack listens there
    result = shopctl(
        {"SHOP_BROKER_URL": amqp_url(vhost)}, "fault", "set", "order", "StockReserved", "drop"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: refused: no order process listens for faults")
    assert "Traceback" not in result.stderr
