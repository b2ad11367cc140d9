"""The TUI's tables and inputs: each with the keys it answers to."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input

# the parts that take part in a saga: one lane each, one fault target each
LANES = ("cart", "order", "inventory", "payment", "shipping")


class OrdersTable(DataTable[Any]):
    """The orders; a move of the user's pins the one chosen (f follows again)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "app.follow", "follow newest"),
    ]
    user_moved = False

    def action_cursor_up(self) -> None:
        self.user_moved = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self.user_moved = True
        super().action_cursor_down()

    def action_page_up(self) -> None:
        self.user_moved = True
        super().action_page_up()

    def action_page_down(self) -> None:
        self.user_moved = True
        super().action_page_down()

    def action_scroll_home(self) -> None:
        self.user_moved = True
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.user_moved = True
        super().action_scroll_end()

    async def _on_click(self, event: Any) -> None:
        self.user_moved = True
        await super()._on_click(event)


class FilterInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.leave_filter", "leave the filter"),
    ]


class PartsTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "app.part('restart')", "restart"),
        Binding("x", "app.part('stop')", "stop"),
        Binding("g", "app.part('start')", "start"),
        Binding("p", "app.part('pause')", "pause"),
        Binding("u", "app.part('resume')", "resume"),
    ]


class DeadLetterTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.inspect_dead", "inspect", show=True),
        Binding("R", "app.replay_dead", "replay"),
        Binding("X", "app.purge_dead", "purge"),
    ]


class ScenarioTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.run_scenario", "run", show=True),
    ]


class FaultTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "app.clear_faults", "clear part's faults"),
    ]
