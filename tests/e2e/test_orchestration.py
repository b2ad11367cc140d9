"""The orchestrated saga's durable timers: twenty sagas wait on payment (it
is stopped), the orchestrator (the order service) is restarted meanwhile,
and every saga still ends at its own deadline, its stock given back and
nothing charged once payment is back (docs/saga.md)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import psycopg
import pytest

from tests.e2e.conftest import Shopper, login, new_product, new_shopper
from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e

SAGAS = 20
STEP_TIMEOUT_S = 8.0


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.timeout(240)
def test_twenty_sagas_on_a_timer_end_at_their_deadlines_across_an_orchestrator_restart(
    sandbox_env,
):
    env = {**sandbox_env, "SHOP_ORDER_STEP_TIMEOUT_S": str(STEP_TIMEOUT_S)}
    up = shopctl(env, "up", "--runtime", "local", "--saga", "orchestrated", timeout=120)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
    status = shopctl(env, "status")
    assert "sagas: orchestrated" in status.stdout, status.stdout
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    database = f"postgresql://postgres@127.0.0.1:5432/{env['SHOP_DATABASE_PREFIX']}_order"

    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", env["SHOP_ADMIN_PASSWORD"]), "a")
        sku = new_product(admin, stock=SAGAS)
        assert shopctl(env, "stop", "payment").returncode == 0
        shopper = new_shopper(client)
        orders = [shopper.checkout(shopper.cart_with(sku, 1)) for _ in range(SAGAS)]

        # every saga sent ChargePayment and waits on its reply, its timer set
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(database) as db:
                rows = db.execute(
                    "SELECT order_id::text, state, step, deadline_at FROM sagas"
                    " WHERE order_id = ANY(%s::uuid[])",
                    (orders,),
                ).fetchall()
            waiting = {r[0]: r[3] for r in rows if (r[1], r[2]) == ("running", 1)}
            if len(waiting) == SAGAS:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)

        # the orchestrator goes down and comes back before any timer fires
        restarted = shopctl(env, "restart", "order", timeout=60)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert min(waiting.values()).timestamp() > time.time(), "restarted too late to tell"

        # each ends CANCELLED (timeout) at its own deadline: not before, and
        # within the sweep's second and some slack after it
        for order_id in orders:
            order = shopper.wait_terminal(order_id, timeout=STEP_TIMEOUT_S + 30)
            assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "timeout")
            ended = _stamp(order["updated_at"])
            late = (ended - waiting[order_id]).total_seconds()
            assert 0 <= late < 5, (order_id, late)

        # payment back: each saga's compensations run (refund, then release),
        # nothing is charged, and the stock is all there again
        assert shopctl(env, "start", "payment", timeout=60).returncode == 0
        deadline = time.monotonic() + 60
        while True:
            stock = client.get(f"/api/inventory/{sku}").json()
            with psycopg.connect(database) as db:
                states = db.execute(
                    "SELECT state, count(*) FROM sagas WHERE order_id = ANY(%s::uuid[])"
                    " GROUP BY state",
                    (orders,),
                ).fetchall()
            if (stock["available"], stock["reserved"]) == (SAGAS, 0) and dict(states) == {
                "cancelled": SAGAS
            }:
                break
            assert time.monotonic() < deadline, (stock, states)
            time.sleep(0.5)
        payments = f"postgresql://postgres@127.0.0.1:5432/{env['SHOP_DATABASE_PREFIX']}_payment"
        with psycopg.connect(payments) as db:
            kept = db.execute(
                "SELECT status, count(*) FROM payments WHERE order_id = ANY(%s::uuid[])"
                " GROUP BY status",
                (orders,),
            ).fetchall()
        # ChargePayment and RefundPayment wait on two queues: whichever payment
        # takes first, no money is kept (charged then refunded, or never charged)
        assert set(dict(kept)) <= {"REFUNDED"}, kept
