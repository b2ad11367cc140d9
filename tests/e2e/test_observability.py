"""Traces and logs of a sandbox exactly as `shopctl up` starts it (the
default settings: span files, JSON logs, Prometheus): one checkout is one
trace across every part, and its id is in every part's log lines, in `why`
and in the saga's exemplars; Prometheus scrapes every part, each dashboard
panel has data, and a dead letter fires an alert that `status` shows."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aio_pika
import httpx
import pytest

from shopctl.observe.dashboard import PANELS
from shopctl.observe.spans import Span, read_spans, traces_of_order
from shopctl.runtimes.prometheus import binary as prometheus_binary
from tests.e2e.conftest import Shopper, login, new_product, new_shopper
from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e

SAGA_PARTS = {"gateway", "cart", "order", "inventory", "payment", "shipping"}


def _trace(spans_dir: Path, order_id: str, last_span: str, timeout: float = 15) -> list[Span]:
    """The order's one trace, once the span named ``last_span``, a span of
    every saga part and the relay's publish span of every event processed
    are written. Each part exports every half second, on its own, so a
    part's process span can be on disk a batch before its publish span,
    while a later part has already written the last span."""
    deadline = time.monotonic() + timeout
    while True:
        spans = read_spans(spans_dir) if spans_dir.is_dir() else []
        traces = traces_of_order(spans, order_id)
        assert len(traces) <= 1, f"order {order_id} in several traces: {traces}"
        mine = [s for s in spans if traces and s.trace_id == traces[0]]
        names = {s.name for s in mine}
        published = all(
            s.name.replace(" process", " publish") in names
            for s in mine
            if s.name.endswith(" process")
        )
        if last_span in names and published and {s.part for s in mine} >= SAGA_PARTS:
            return mine
        parts = sorted({s.part for s in mine})
        assert time.monotonic() < deadline, f"{order_id}: {len(mine)} spans, from {parts}"
        time.sleep(0.3)


def test_one_checkout_is_one_trace_in_every_part_its_logs_and_why(sandbox_env):
    env = {k: v for k, v in sandbox_env.items() if k != "SHOP_PROMETHEUS"}  # a newcomer's
    up = shopctl(env, "up", "--runtime", "local")
    assert up.returncode == 0, up.stdout + up.stderr
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", "local-runtime-test"), "admin")
        shopper = new_shopper(client)
        sku = new_product(admin, stock=5)
        paid = shopper.checkout(shopper.cart_with(sku, 1))
        declined = shopper.checkout(shopper.cart_with(sku, 1), card="tok_chargeDeclined")
        assert shopper.wait_terminal(paid)["status"] == "COMPLETED"
        assert shopper.wait_terminal(declined)["status"] == "CANCELLED"

    spans_dir = Path(env["SHOP_STATE_DIR"]) / "local" / "spans"
    spans = _trace(spans_dir, paid, "order.completed publish")
    by_id = {s.span_id: s for s in spans}
    assert {s.part for s in spans} >= SAGA_PARTS, sorted({s.part for s in spans})
    [root] = [s for s in spans if not s.parent_id]
    assert root.part == "gateway" and root.name.startswith("POST /api/")
    # every other span's parent is in the trace: nothing starts a trace of its own
    assert all(s.parent_id in by_id for s in spans if s is not root)
    # the HTTP hop: the gateway's client span is the cart's server span's parent
    [cart_server] = [s for s in spans if s.part == "cart" and s.attributes.get("http.route")]
    assert by_id[cart_server.parent_id].part == "gateway"
    # every event hop: the process span is a child of the creation context
    # (the span that emitted the event) and linked to it; the relay's publish
    # span is its sibling
    process = [s for s in spans if s.name.endswith(" process")]
    assert {s.part for s in process} >= SAGA_PARTS - {"gateway", "cart"}
    for span in process:
        assert (span.trace_id, span.parent_id) in span.links, span.name
        publish = span.name.replace(" process", " publish")
        assert any(s.name == publish and s.parent_id == span.parent_id for s in spans), publish
        assert span.attributes["messaging.system"] == "rabbitmq"
        assert span.attributes["messaging.message.conversation_id"] == paid
    # the statements inside the steps
    assert any(s.attributes.get("db.system") == "postgresql" for s in spans if s.part == "payment")

    # the trace id in the JSON log lines of all six parts
    trace_id = root.trace_id
    logs = shopctl(env, "logs", "--order", paid, "--json")
    assert logs.returncode == 0, logs.stderr
    lines = [json.loads(line) for line in logs.stdout.splitlines()]
    assert lines and all(line["order"] == paid for line in lines)
    assert {line["part"] for line in lines} >= SAGA_PARTS, lines
    assert {line["trace_id"] for line in lines} == {trace_id}
    people = shopctl(env, "logs", "--order", paid[:8])
    assert people.returncode == 0 and "handled (saga" in people.stdout
    assert not people.stdout.lstrip().startswith("{")  # for people, not JSON

    why = shopctl(env, "why", paid[:8])
    assert why.returncode == 0 and f"trace {trace_id}" in why.stdout, why.stdout

    # the declined card's trace shows the compensation inside it
    _trace(spans_dir, declined, "stock.released publish")
    waterfall = shopctl(env, "trace", "--spans", declined[:8])
    assert waterfall.returncode == 0, waterfall.stderr
    text = waterfall.stdout
    assert "payment.failed process" in text and "stock.released publish" in text
    assert " inventory " in text and " ms " in text
    missing = shopctl(env, "trace", "--spans", "ffffffff")
    assert missing.returncode == 2 and "no spans of an order ffffffff" in missing.stderr

    declined_trace = traces_of_order(read_spans(spans_dir), declined)
    _prometheus_scrapes_every_part_and_every_panel_has_data(
        env, up.stdout, {trace_id, *declined_trace}
    )


def _prometheus_scrapes_every_part_and_every_panel_has_data(
    env: dict[str, str], up: str, traced: set[str]
) -> None:
    if prometheus_binary() is None:
        pytest.skip("no prometheus on this machine (scripts/test installs Debian's)")
    prometheus = f"http://127.0.0.1:{env['SHOP_PROMETHEUS_PORT']}"
    assert f"prometheus  {prometheus}" in up, up
    deadline = time.monotonic() + 30
    while True:  # every part's process and RabbitMQ, each up at its last scrape
        targets = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if set(health) == SAGA_PARTS | {"catalog", "rabbitmq"} and set(health.values()) == {"up"}:
            break
        assert time.monotonic() < deadline, health
        time.sleep(1)
    # each dashboard panel's query answers with data after the checkouts
    empty = [panel.title for panel in PANELS]
    while empty:
        for panel in PANELS:
            if panel.title in empty:
                answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": panel.expr})
                assert answer.status_code == 200, (panel.title, answer.text)
                if answer.json()["data"]["result"]:
                    empty.remove(panel.title)
        assert time.monotonic() < deadline + 30, f"no data for {empty}"
        time.sleep(1)
    status = shopctl(env, "status")
    assert f"prometheus: {prometheus}" in status.stdout and "no alert firing" in status.stdout

    # the saga's duration carries the trace ids as exemplars
    exemplars = httpx.get(
        f"{prometheus}/api/v1/query_exemplars",
        params={"query": "shop_saga_duration_seconds_bucket", "start": time.time() - 600},
    ).json()["data"]
    trace_ids = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
    assert trace_ids & traced, (trace_ids, traced)

    # a dead letter fires ShopDeadLetters at the next evaluation, and status says so
    asyncio.run(_publish_poison(env["SHOP_BROKER_URL"]))
    deadline = time.monotonic() + 30
    while "alert firing ShopDeadLetters" not in (status := shopctl(env, "status")).stdout:
        assert time.monotonic() < deadline, status.stdout
        time.sleep(1)
    assert "inventory.order.created.dlq" in status.stdout


async def _publish_poison(broker_url: str) -> None:
    """A message no consumer can read: dead-lettered at once (not_json)."""
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange("shop.events")
        await exchange.publish(aio_pika.Message(b"not json", message_id="poison"), "order.created")
