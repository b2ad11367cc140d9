"""Snapshots of the TUI's main screens at 80x24 and 120x40 (and the light
theme), drawn from a fixed saga: a completed order, a declined one with its
compensation, and one waiting on payment with a retry. The screens take
their events from the same feed the tap fills; no broker is needed to draw
them, so the pictures do not depend on timing."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from shopctl.observe.timeline import Incident, parse_event
from tui.app import ShopTui

T0 = 1_790_000_000.0  # a fixed clock: ages and offsets are the same each run
STEPS = {
    "a": [
        ("CartCheckedOut", "cart", 0.000, {"total_cents": 1200}),
        ("OrderCreated", "order", 0.021, {"total_cents": 1200}),
        ("StockReserved", "inventory", 0.043, {}),
        ("PaymentSucceeded", "payment", 0.061, {"amount_cents": 1200}),
        ("ShippingCreated", "shipping", 0.080, {"tracking_number": "SHP1"}),
        ("OrderCompleted", "order", 0.097, {}),
    ],
    "b": [
        ("CartCheckedOut", "cart", 1.000, {"total_cents": 900}),
        ("OrderCreated", "order", 1.020, {"total_cents": 900}),
        ("StockReserved", "inventory", 1.041, {}),
        ("PaymentFailed", "payment", 1.060, {"reason": "card_declined"}),
        ("OrderCancelled", "order", 1.077, {"reason": "payment_declined"}),
        ("StockReleased", "inventory", 1.083, {}),
    ],
    "c": [
        ("CartCheckedOut", "cart", 2.000, {"total_cents": 500}),
        ("OrderCreated", "order", 2.019, {"total_cents": 500}),
        ("StockReserved", "inventory", 2.040, {}),
    ],
}


def order_id(name: str) -> str:
    return str(uuid.UUID(f"{ord(name):02x}{ord(name):02x}c0de-0000-4000-8000-{ord(name):012x}"))


def saga_items():
    items = []
    for name, steps in STEPS.items():
        previous = None
        for index, (kind, source, at, data) in enumerate(steps):
            event_id = str(uuid.UUID(int=ord(name) * 1000 + index))
            body = {
                "id": event_id,
                "type": kind,
                "source": source,
                "time": datetime.fromtimestamp(T0 + at, UTC).isoformat(),
                "correlationid": order_id(name),
                "causationid": previous,
                "data": data,
            }
            items.append(parse_event(orjson.dumps(body), "k", seen_at=T0 + at))
            previous = event_id
    items.append(
        Incident(
            "retry",
            "payment.stock.reserved",
            str(uuid.UUID(int=ord("c") * 1000 + 2)),
            "StockReserved",
            order_id("c"),
            2,
            "InjectedFailure: fault 1a2b3c4d: fail",
            T0 + 2.3,
        )
    )
    return items


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Clock times in the stream are local: the pictures are taken in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def app() -> ShopTui:
    return ShopTui(None, tap=False, clock=lambda: T0 + 14.0)


async def fed(pilot) -> None:
    for item in saga_items():
        pilot.app.feed(item)
    await pilot.pause(0.3)  # a flush tick


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_saga_screen(snap_compare, size):
    async def run_before(pilot):
        await fed(pilot)
        pilot.app.select(order_id("c"))  # the one waiting, with its retry
        await pilot.pause(0.1)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_events_screen(snap_compare, size):
    async def run_before(pilot):
        await fed(pilot)
        await pilot.press("2", "escape")
        await pilot.pause(0.1)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)


def test_saga_screen_light(snap_compare):
    async def run_before(pilot):
        await fed(pilot)
        pilot.app.select(order_id("b"))  # the declined one, compensated
        await pilot.press("ctrl+t")
        await pilot.pause(0.1)

    assert snap_compare(app(), terminal_size=(120, 40), run_before=run_before)


async def test_the_order_list_shows_every_column_whole_with_its_scrollbar():
    """At 130 columns, with more orders than the list's height (a scrollbar),
    the took column is whole: it was cut to 'too'."""
    tui = app()
    async with tui.run_test(size=(130, 30)) as pilot:
        for n in range(60):
            body = {
                "id": str(uuid.uuid4()),
                "type": "CartCheckedOut",
                "source": "cart",
                "time": datetime.fromtimestamp(T0 + n, UTC).isoformat(),
                "correlationid": str(uuid.uuid4()),
                "data": {},
            }
            tui.feed(parse_event(orjson.dumps(body), "k", seen_at=T0 + n))
        await pilot.pause(0.3)
        orders = tui.query_one("#orders")
        orders.move_cursor(row=3)
        await pilot.pause(0.1)
        assert orders.show_vertical_scrollbar
        assert orders.virtual_size.width <= orders.scrollable_content_region.width


async def test_a_firing_alert_shows_under_the_parts_and_goes_when_it_stops():
    from textual.widgets import Static

    from tui.panes.parts import PartsPane

    tui = app()
    async with tui.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        pane = tui.query_one(PartsPane)
        alerts = tui.query_one("#alerts", Static)
        assert not alerts.display  # nothing fires: no line at all
        pane.show_alerts(["ShopDeadLetters: 3 dead letters wait on payment.stock.reserved.dlq"])
        await pilot.pause(0.1)
        assert alerts.display and alerts.region.height >= 1
        assert "alert firing ShopDeadLetters: 3 dead letters" in str(alerts.render())
        pane.show_alerts([])
        await pilot.pause(0.1)
        assert not alerts.display
