"""The TUI's lists keyed by row (tui/lines.py): a row is drawn again only
when it changed, the oldest leave past the bound, and the keys of the
orders' list choose an order as a person presses them."""

from __future__ import annotations

import orjson
from rich.text import Text

from shopctl.observe.timeline import parse_event
from tests.unit.test_tui_snapshots import T0, app, saga_items
from tui.lines import OrderList, StreamLog


def order_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def _cart_checked_out(n: int):
    body = {
        "id": f"e-{n}",
        "type": "CartCheckedOut",
        "source": "cart",
        "time": "2026-12-05T00:00:00+00:00",
        "correlationid": order_id(n),
        "data": {},
    }
    return parse_event(orjson.dumps(body), "k", seen_at=T0 + n)


async def test_a_row_is_rendered_again_only_when_it_changed():
    rendered: list[str] = []

    class Counted(StreamLog):
        def render_row(self, key, row, width, style):
            rendered.append(row)
            return super().render_row(key, row, width, style)

    tui = app()
    async with tui.run_test(size=(100, 30)) as pilot:
        stream = Counted(Text, max_rows=5, id="counted")
        await tui.screen.mount(stream)
        stream.write_many(["a", "b", "c"])
        await pilot.pause(0.1)
        assert {"a", "b", "c"} <= set(rendered)  # (and again once it had its size)
        rendered.clear()
        stream.write_many(["d"])  # a new row: only it is rendered
        await pilot.pause(0.1)
        assert rendered == ["d"]
        rendered.clear()
        stream.put(0, "A")  # the first row changed: only it again
        await pilot.pause(0.1)
        assert rendered == ["A"]
        stream.write_many(["e", "f", "g"])  # past five rows, the oldest leave
        await pilot.pause(0.1)
        assert stream.plain == ["c", "d", "e", "f", "g"]
        assert stream.virtual_size.height == 5


async def test_the_keys_choose_an_order_and_f_follows_the_newest_again():
    tui = app()
    async with tui.run_test(size=(130, 30)) as pilot:
        for n in range(12):
            tui.feed(_cart_checked_out(n))
        await pilot.pause(0.3)
        orders = tui.query_one("#orders", OrderList)
        assert len(orders) == 12 and tui.follow and tui.selected == order_id(11)
        await pilot.press("1", "up", "up")  # the saga pane's key gives the list the focus
        await pilot.pause(0.1)
        assert not tui.follow and tui.selected == order_id(9)
        assert orders.cursor == 9
        await pilot.press("home")
        await pilot.pause(0.1)
        assert tui.selected == order_id(0)
        tui.feed(_cart_checked_out(12))  # pinned: a new order does not move the choice
        await pilot.pause(0.2)
        assert tui.selected == order_id(0)
        await pilot.press("f")
        await pilot.pause(0.1)
        assert tui.follow and tui.selected == order_id(12)
        assert orders.cursor == 12


async def test_a_saga_feeds_the_orders_list_once_per_order():
    tui = app()
    async with tui.run_test(size=(130, 30)) as pilot:
        for item in saga_items():
            tui.feed(item)
        await pilot.pause(0.3)
        orders = tui.query_one("#orders", OrderList)
        assert len(orders) == 3
        assert "orders" in str(tui.query_one("#statusline").render())
        assert len(tui.query_one("SagaPane").known) == 3  # type: ignore[attr-defined]


async def test_the_collector_is_moved_to_quiet_seconds_and_given_back_after():
    import gc

    before = gc.get_threshold()
    tui = app()
    async with tui.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        assert gc.get_threshold()[2] > before[2] and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
