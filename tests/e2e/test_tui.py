"""The TUI driven by Textual's Pilot against a real sandbox: real events
from the broker, real parts, real dead letters and faults."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from textual.widgets import Button, DataTable, Input, RichLog, Select, TabbedContent

from shopctl.runtimes.local import LocalRuntime
from shopctl.settings import SandboxSettings
from tests.e2e.conftest import Shopper, login, new_product, new_shopper, sandbox
from tests.e2e.test_local_runtime import shopctl
from tui.app import ShopTui
from tui.backend import Backend
from tui.lines import OrderList, StreamLog

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tui_env(tmp_path_factory):
    with sandbox(tmp_path_factory.mktemp("tui-state"), "tui") as env:
        up = shopctl(env, "up", "--runtime", "local")
        assert up.returncode == 0, up.stdout + up.stderr
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            yield env


@pytest.fixture
def client(tui_env):
    gateway = f"http://127.0.0.1:{tui_env['SHOP_GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as http:
        yield http


@pytest.fixture
def admin(client):
    return Shopper(client, login(client, "admin@shop.local", "local-runtime-test"), "admin")


def make_app() -> ShopTui:
    settings = SandboxSettings()
    return ShopTui(Backend(LocalRuntime(settings), settings, ROOT / "scenarios"), history_s=0)


async def until(condition, timeout: float = 15.0, pilot=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await (pilot.pause(0.05) if pilot else asyncio.sleep(0.05))


def drawing_of(app: ShopTui) -> str:
    """The saga pane's drawing as plain text."""
    console = Console(width=100, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(app.drawing)
    return capture.get()


def log_text(app: ShopTui, selector: str) -> str:
    found = app.query_one(selector)
    if isinstance(found, StreamLog):
        return "\n".join(found.plain)
    assert isinstance(found, RichLog)
    return "\n".join(line.text for line in found.lines)


async def test_a_checkout_shows_whole_within_a_second_and_a_decline_its_compensation(
    tui_env, client, admin
):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: app.tap_state == "live", pilot=pilot)
        shopper = new_shopper(client)
        sku = await asyncio.to_thread(new_product, admin, 3)
        cart = await asyncio.to_thread(shopper.cart_with, sku, 1)
        order = await asyncio.to_thread(shopper.checkout, cart)
        await until(lambda: (t := app.store.get(order)) is not None and t.outcome, pilot=pilot)
        await pilot.pause(2 * 0.1)
        timeline = app.store.get(order)
        completed = next(e for e in timeline if e.type == "OrderCompleted")
        # on screen within a second of being published
        assert app.shown_at[completed.id] - completed.at < 1.0
        drawn = drawing_of(app)
        for step in ("CartCheckedOut", "OrderCreated", "StockReserved", "ShippingCreated"):
            assert step in drawn, drawn
        assert "COMPLETED" in drawn and app.selected == order
        assert order in app.query_one("#orders", OrderList)

        declined = await asyncio.to_thread(
            shopper.checkout,
            await asyncio.to_thread(shopper.cart_with, sku, 1),
            "tok_chargeDeclined",
        )
        await until(
            lambda: (t := app.store.get(declined)) is not None and "StockReleased" in t.types,
            pilot=pilot,
        )
        await pilot.pause(0.2)
        drawn = drawing_of(app)
        assert "PaymentFailed" in drawn and "StockReleased" in drawn
        assert "CANCELLED (payment_declined)" in drawn

        # the user picks the first order: pinned, and its saga drawn
        await pilot.click("#orders", offset=(2, 1))
        await pilot.pause(0.2)
        assert not app.follow and app.selected != declined

        # the stream, filtered by a part
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "events"
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"payment")
        await pilot.pause(0.2)
        lines = [line for line in log_text(app, "#stream").splitlines() if line.strip()]
        assert lines and all(" payment " in line for line in lines), lines
        await pilot.press("escape", "1")
        assert app.query_one(TabbedContent).active == "saga"


async def test_parts_pane_pauses_and_resumes_a_part(tui_env, client, admin):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        table = app.query_one("#parts-table", DataTable)
        await until(lambda: "inventory" in table.rows, pilot=pilot)
        table.move_cursor(row=table.get_row_index("inventory"))
        await pilot.press("p")
        await until(lambda: "paused" in str(table.get_row("inventory")[1]), 10, pilot)
        await pilot.press("u")
        await until(lambda: "running" in str(table.get_row("inventory")[1]), 10, pilot)


async def test_a_dead_letter_is_inspected_and_replayed_from_its_pane(tui_env, client, admin):
    """Shipping fails every attempt at a PaymentSucceeded: it is dead-lettered;
    with the fault off, replayed from the pane, it reaches shipping and the
    saga completes."""
    env = tui_env
    fault = shopctl(env, "fault", "set", "shipping", "PaymentSucceeded", "fail")
    assert fault.returncode == 0, fault.stderr
    app = make_app()
    queue = "shipping.payment.succeeded.dlq"
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.tap_state == "live", pilot=pilot)
        shopper = new_shopper(client)
        sku = await asyncio.to_thread(new_product, admin, 2)
        cart = await asyncio.to_thread(shopper.cart_with, sku, 1)
        order = await asyncio.to_thread(shopper.checkout, cart)
        await until(
            lambda: (
                any(i.kind == "dead_letter" for i in app.store.get(order).incidents)
                if app.store.get(order)
                else False
            ),
            timeout=30,
            pilot=pilot,
        )
        assert shopctl(env, "fault", "clear", "shipping").returncode == 0
        await pilot.press("4")
        dead = app.query_one("#dead-letters", DataTable)
        await until(lambda: queue in dead.rows and str(dead.get_row(queue)[1]) == "1", 10, pilot)
        dead.move_cursor(row=dead.get_row_index(queue))
        await pilot.press("enter")
        await until(lambda: "handler_failed" in log_text(app, "#dead-detail"), 10, pilot)
        assert order in log_text(app, "#dead-detail")
        await pilot.press("R")
        await until(lambda: app.store.get(order).outcome == "COMPLETED", 20, pilot)
        await until(lambda: str(dead.get_row(queue)[1]) == "0", 10, pilot)
        drawn_for = app.store.get(order)
        assert [i.kind for i in drawn_for.incidents].count("retry") >= 1


async def test_a_fault_switched_from_its_pane_and_cleared(tui_env):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        app.query_one("#fault-part", Select).value = "payment"
        app.query_one("#fault-kind", Select).value = "delay"
        app.query_one("#fault-event", Input).value = "StockReserved"
        app.query_one("#fault-ms", Input).value = "300"
        app.query_one("#fault-order", Input).value = "abc"  # too short to name an order
        await pilot.click("#fault-on")

        def refused() -> bool:  # the notice on screen (Textual keeps no public list of them)
            return any("first 8 characters" in str(n.message) for n in app._notifications)

        await until(refused, 5, pilot)
        table = app.query_one("#faults-table", DataTable)
        assert table.row_count == 0  # refused before anything was sent
        app.query_one("#fault-order", Input).value = "abcdef12"  # as the Saga pane shows it
        button = app.query_one("#fault-on", Button)
        # a button ignores a click during its 0.2 s press effect; a person clicks later
        await until(lambda: not button.has_class("-active"), 5, pilot)
        await pilot.click("#fault-on")
        await until(lambda: table.row_count == 1, 10, pilot)
        row = table.get_row_at(0)
        assert row[0] == "payment" and row[2] == "StockReserved" and row[3] == "delay"
        assert row[4] == "abcdef12"
        table.focus()
        await pilot.press("c")
        await until(lambda: table.row_count == 0, 10, pilot)


async def test_a_scenario_runs_from_its_pane(tui_env):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        table = app.query_one("#scenarios-table", DataTable)
        key = str(ROOT / "scenarios" / "happy-path.yaml")
        assert key in table.rows
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("enter")
        await until(lambda: "passed in" in log_text(app, "#scenario-log"), 60, pilot)
        assert "FAILED" not in log_text(app, "#scenario-log")
