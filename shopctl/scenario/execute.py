"""One scenario from start to end, the invariants after it, and the JUnit
file for CI."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx

from shopctl.errors import ShopError
from shopctl.observe.deadletters import depths
from shopctl.observe.timeline import Tap, render_timeline
from shopctl.scenario.loading import Scenario
from shopctl.scenario.runner import TERMINAL_WAIT_S, Failed, Result, Run, Target


async def run_scenario(scenario: Scenario, target: Target) -> Result:
    """Steady state, method, expectations, steady state again, invariants;
    the rollbacks run whatever happened, and every fault is cleared last."""
    started = time.monotonic()
    dead_before = await depths(target.broker_url)
    async with (
        Tap(target.broker_url) as tap,
        httpx.AsyncClient(base_url=target.gateway, timeout=30) as client,
    ):
        run = Run(scenario, target, tap)
        run.dead_before = dead_before
        try:
            timeout = scenario.document.get("saga_timeout")
            await run.tune(None if timeout is None else float(timeout))
            for step in scenario.section("steady_state"):
                await run.step(client, step)
            for step in scenario.section("method"):
                await run.step(client, step)
            for expectation in scenario.section("expect"):
                kind, body = next(iter(expectation.items()))
                await run.step(client, {"name": f"expect {kind}", **_as_step(kind, body)})
            for step in scenario.section("steady_state"):
                await run.step(client, step)
            await invariants(run, client, dead_before)
            run.result.passed = True
        except Failed as exc:
            run.result.failure = str(exc)
        finally:
            rollbacks = [*scenario.section("rollbacks"), {"clear_faults": "all"}]
            for step in rollbacks:
                try:
                    await run.step(client, {"name": f"rollback: {_label(step)}", **step})
                except Failed as exc:
                    run.fail_late(str(exc))
            try:
                await run.restore_parts()
            except (Failed, ShopError) as exc:
                run.fail_late(f"rollback: parts not restored: {exc}")
        for order in run.orders:
            timeline = tap.store.get(order)
            if timeline is not None:
                run.result.orders[order] = timeline
    run.result.seconds = time.monotonic() - started
    expected = scenario.document.get("expect_failure")
    if expected is not None:
        run.result.expect_failure = _expected_failure(expected)
    return run.result


def _expected_failure(expected: str | dict[str, str]) -> tuple[str, str | None]:
    """(why it must fail, text its failure must hold or None)."""
    if isinstance(expected, str):
        return expected, None
    return expected["because"], expected.get("failure")


def _as_step(kind: str, body: Any) -> dict[str, Any]:
    """An expectation as the step that checks it (an order's is ``await``)."""
    return {"await": body} if kind == "order" else {kind: body}


def _label(step: dict[str, Any]) -> str:
    return str(step.get("name") or next(k for k in step if k != "name"))


async def invariants(
    run: Run, client: httpx.AsyncClient, dead_before: dict[str, int | None]
) -> None:
    """After any scenario: every order terminal, no stock left reserved on
    its products, no capture kept for a cancelled order, no dead letter it
    did not expect."""
    for order in run.orders:
        try:
            await run.tap.wait_for(order, lambda t: t.outcome is not None, TERMINAL_WAIT_S)
        except TimeoutError:
            raise Failed(
                f"invariant: order {order} is not terminal after {TERMINAL_WAIT_S:.0f} s\n"
                + render_timeline(run.tap.store.get(order))
            ) from None
    for sku in sorted(run.skus):
        await stock_settles(run, client, sku)
    headers = await run.token(client, "admin")  # parallel branches' orders are others'
    for order in run.orders:
        timeline = run.tap.store.get(order)
        if timeline is None or not (timeline.outcome or "").startswith("CANCELLED"):
            continue
        deadline = time.monotonic() + run.target.settle_s
        while True:
            answer = await client.get("/api/payments", params={"order_id": order}, headers=headers)
            if answer.status_code != 200:
                raise Failed(f"invariant: payments of {order} not read: {answer.status_code}")
            payments = answer.json()
            captured = [p for p in payments.get("items", []) if p.get("status") == "CAPTURED"]
            if not captured:
                break
            if time.monotonic() > deadline:
                raise Failed(
                    f"invariant: order {order} was cancelled but its payment stays captured"
                )
            await asyncio.sleep(0.2)
    expected = int(run.scenario.document.get("dead_letters", 0))
    after = await depths(run.target.broker_url)
    grown = {q: (after[q] or 0) - (dead_before.get(q) or 0) for q in after}
    new = sum(max(n, 0) for n in grown.values())
    if new != expected:
        where = ", ".join(f"{q} +{n}" for q, n in grown.items() if n > 0) or "none"
        raise Failed(
            f"invariant: {new} new dead letters ({where}), the scenario expects {expected}"
        )


async def stock_settles(run: Run, client: httpx.AsyncClient, sku: str) -> None:
    """Nothing stays reserved, and what was put in is either available or
    left in a completed order (within the settle time: compensations may
    land after the order's end)."""
    deadline = time.monotonic() + run.target.settle_s
    while True:
        stock = (await client.get(f"/api/inventory/{sku}")).json()
        shipped, put_in = shipped_quantity(run, sku), run.stock_in.get(sku, 0)
        if stock.get("reserved") != 0:
            problem = f"{sku} still has stock reserved with every order over: {stock}"
        elif stock.get("available", 0) + shipped != put_in:
            problem = (
                f"{sku} stock not conserved: {put_in} put in, {shipped} in completed "
                f"orders, {stock.get('available')} available"
            )
        else:
            return
        if time.monotonic() > deadline:
            raise Failed(f"invariant: {problem}")
        await asyncio.sleep(0.2)


def shipped_quantity(run: Run, sku: str) -> int:
    """How many of ``sku`` the scenario's completed orders took."""
    taken = 0
    for order in run.orders:
        timeline = run.tap.store.get(order)
        if timeline is None or timeline.outcome != "COMPLETED":
            continue
        created = next((e for e in timeline if e.type == "OrderCreated"), None)
        for item in (created.data.get("items") or []) if created else []:
            if isinstance(item, dict) and item.get("sku") == sku:
                taken += int(item.get("quantity", 0))
    return taken


def write_junit(results: list[Result], path: Path) -> None:
    suite = ElementTree.Element(
        "testsuite",
        name="shop scenarios",
        tests=str(len(results)),
        failures=str(sum(not r.as_expected for r in results)),
        skipped=str(sum(r.expected_failure for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=result.scenario.path.stem,
            name=result.scenario.name,
            time=f"{result.seconds:.3f}",
        )
        if result.expected_failure:
            # as pytest reports an xfail: skipped, with the reason and the failure seen
            skipped = ElementTree.SubElement(
                case,
                "skipped",
                type="expected-failure",
                message=f"expected to fail: {result.expect_failure[0]}"
                if result.expect_failure
                else "",
            )
            skipped.text = result.failure
        elif not result.as_expected:
            failure = ElementTree.SubElement(
                case, "failure", message=result.verdict_text.splitlines()[0]
            )
            failure.text = result.verdict_text
        journal = "\n".join(
            f"{e.at:8.3f} s  {e.step}: {e.outcome} ({e.seconds:.3f} s)" for e in result.journal
        )
        ElementTree.SubElement(case, "system-out").text = journal
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
