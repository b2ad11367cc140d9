"""`shopctl trace` and `shopctl why` from a shell, against a stack of their
own: a held order is explained with its queue and its fault, a cancelled
one with its cause, a paused part with the command that resumes it; the
tracer shows each saga live and replays history from the outboxes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from services.common.db import create_engine
from services.common.retention import prune_once
from services.common.settings import ServiceSettings
from shopctl.stack import SERVICES
from tests.conftest import _pg_url
from tests.e2e.conftest import Shopper, login, new_product, new_shopper
from tests.e2e.test_local_runtime import ISOLATED, shopctl

pytestmark = pytest.mark.e2e


LINE = re.compile(r"\+\s*[\d.]+ s\s+\w+\s+(\S+)")


def event_type(line: str) -> str:
    """The event type in a trace line (after the offset and the part)."""
    found = LINE.search(line)
    return found.group(1) if found else ""


async def prune_outboxes(prefix: str) -> None:
    """Every service's retention, once, with rows kept a millisecond."""
    for service in SERVICES:
        settings = ServiceSettings(
            service_name=service.name,
            database_url=_pg_url(f"{prefix}_{service.name}"),
            outbox_keep_s=0.001,
        )
        engine = create_engine(settings)
        try:
            assert await prune_once(engine, settings) is not None
        finally:
            await engine.dispose()


def outbox_rows_of(prefix: str, order: str) -> list[tuple[str, int]]:
    found = []
    for service in SERVICES:
        with psycopg.connect(_pg_url(f"{prefix}_{service.name}")) as db:
            count = db.execute(
                "SELECT count(*) FROM outbox WHERE correlation_id = %s", (order,)
            ).fetchone()
        if count and count[0]:
            found.append((service.name, count[0]))
    return found


def why_until(env, order: str, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        answer = shopctl(env, "why", order)
        if text in answer.stdout or time.monotonic() > deadline:
            return answer.stdout + answer.stderr
        time.sleep(0.3)


@pytest.mark.timeout(300)
def test_why_names_the_queue_the_fault_the_cause_and_the_command(sandbox_env):
    # retries slow enough to find a message sitting out its delay (1.5 s, then 3 s)
    env = {**sandbox_env, "SHOP_RUNTIME": "local", "SHOP_RETRY_BASE_DELAY_MS": "1500"}
    assert shopctl(env, "up", "--runtime", "local").returncode == 0
    tracer = subprocess.Popen(
        [sys.executable, "-c", "from shopctl.cli import main; main()", "trace", "--for", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ISOLATED, **env, "COLUMNS": "200"},
    )
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    try:
        with httpx.Client(base_url=gateway, timeout=30) as client:
            admin = Shopper(client, login(client, "admin@shop.local", "local-runtime-test"), "")
            shopper = new_shopper(client)
            sku = new_product(admin, stock=5)
            time.sleep(1)  # the tracer's tap is bound

            held = shopctl(
                env,
                "fault",
                "set",
                "payment",
                "StockReserved",
                "hold",
                "--until",
                "ShippingCreated",
            )
            assert held.returncode == 0, held.stderr
            order = shopper.checkout(shopper.cart_with(sku, 1))
            said = why_until(env, order, "holding this order's message")
            assert f"order {order} waits on PaymentSucceeded from payment" in said, said
            assert "payment holds StockReserved from payment.stock.reserved unacked" in said
            assert "under fault hold" in said and "holding this order's message" in said
            assert "to move it on:\n  shopctl fault clear payment" in said
            assert shopctl(env, "fault", "clear", "payment").returncode == 0
            assert shopper.wait_terminal(order)["status"] == "COMPLETED"
            assert f"order {order} is COMPLETED" in shopctl(env, "why", order).stdout

            declined = shopper.checkout(shopper.cart_with(sku, 1), card="tok_chargeDeclined")
            shopper.wait_terminal(declined)
            said = why_until(env, declined, "compensated: StockReleased")
            assert f"order {declined} is CANCELLED (payment_declined)" in said
            assert "cancelled (payment_declined) because of PaymentFailed from payment" in said
            assert "compensated: StockReleased" in said
            short = shopctl(env, "why", declined[:8])  # as trace and the TUI show it
            assert f"order {declined} is CANCELLED (payment_declined)" in short.stdout, short

            assert shopctl(env, "pause", "inventory").returncode == 0
            paused = shopper.checkout(shopper.cart_with(sku, 1))
            said = why_until(env, paused, "inventory is paused")
            assert "waits on StockReserved from inventory" in said
            assert "inventory is paused" in said and "shopctl resume inventory" in said
            assert shopctl(env, "resume", "inventory").returncode == 0
            assert shopper.wait_terminal(paused)["status"] == "COMPLETED"

            failing = shopctl(
                env, "fault", "set", "payment", "StockReserved", "fail", "--times", "2"
            )
            assert failing.returncode == 0, failing.stderr
            retried = shopper.checkout(shopper.cart_with(sku, 1))
            said = why_until(env, retried, "waits in the retry delay")
            assert "StockReserved waits in the retry delay shop.retry." in said, said
            assert "to go back to payment.stock.reserved for attempt" in said
            assert "InjectedFailure" in said.split("retry delay", 1)[1]  # the failure it sits out
            assert shopper.wait_terminal(retried)["status"] == "COMPLETED"

        history = shopctl(env, "trace", "--since", "5m", "--order", declined[:8], "--for", "0.5")
        lines = [line for line in history.stdout.splitlines() if declined[:8] in line]
        kinds = [event_type(line) for line in lines]
        assert kinds[:4] == [
            "CartCheckedOut",
            "OrderCreated",
            "StockReserved",
            "PaymentFailed",
        ], history.stdout
        # order and inventory each answer PaymentFailed: either may be first
        assert sorted(kinds[4:6]) == ["OrderCancelled", "StockReleased"], history.stdout
        times = [line.split()[0] for line in lines]
        assert times == sorted(times), history.stdout  # in the order the events say they happened

        # retention takes the rows out of the outboxes (here at once, as it does an
        # hour after they were published): why and trace read the saga history
        asyncio.run(prune_outboxes(env["SHOP_DATABASE_PREFIX"]))
        assert not outbox_rows_of(env["SHOP_DATABASE_PREFIX"], declined)
        short = shopctl(env, "why", declined[:8])
        assert f"order {declined} is CANCELLED (payment_declined)" in short.stdout, short
        assert "compensated: StockReleased" in short.stdout
        again = shopctl(env, "trace", "--since", "5m", "--order", declined[:8], "--for", "0.5")
        assert [event_type(line) for line in again.stdout.splitlines() if declined[:8] in line][
            :4
        ] == kinds[:4], again.stdout

        assert shopctl(env, "why", "not-an-order").returncode == 2
        assert shopctl(env, "trace", "--until-terminal").returncode == 2
    finally:
        tracer.terminate()
        live, errors = tracer.communicate(timeout=30)
    for saga in (order, declined, paused):
        seen = [event_type(line) for line in live.splitlines() if saga[:8] in line]
        assert "CartCheckedOut" in seen and ("OrderCompleted" in seen or "OrderCancelled" in seen)
    assert "tracing" in errors
