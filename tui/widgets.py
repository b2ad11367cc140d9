"""The TUI's tables and inputs: each with the keys it answers to."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input

# the parts that take part in a saga: one lane each, one fault target each
LANES = ("cart", "order", "inventory", "payment", "shipping")


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
