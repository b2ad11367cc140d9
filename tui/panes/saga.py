"""The Saga pane: the orders, newest last, each with its state and how long
it has taken; the chosen one's saga drawn across the parts (a lane a part,
a row an event, retry or dead letter). It follows the newest order until
the user picks one (f follows again)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static, TabPane

from shopctl.observe.timeline import Incident, Timeline, TimelineEvent, TimelineStore
from shopctl.observe.trace import style_of
from tui.lines import OrderList
from tui.widgets import LANES

MAX_ORDERS = 500  # listed at once
GUTTER = 15  # "  0.041   21ms "


def _lane_row(width: int, lane: int | None, label: str, style: str, head: Text) -> Text:
    """One row of the swimlanes: a dim guide at the start of every lane and
    the label in its part's lane, running on over the empty lanes after it."""
    lane_width = max((width - GUTTER) // len(LANES), 6)
    line = head.copy()
    line.no_wrap, line.overflow = True, "ellipsis"  # a long label never wraps the row
    line.pad_right(GUTTER - len(line.plain))
    base = "".join("│".ljust(lane_width) for _ in LANES)
    if lane is None:
        line.append(base, style="dim")
        return line
    start = lane * lane_width
    line.append(base[:start], style="dim")
    line.append(label, style=style or "default")
    rest = start + len(label)
    if rest < len(base):
        following = base[rest:]
        first_guide = following.find("│")
        line.append(following if first_guide < 0 else " " * len(following), style="dim")
    return line


def saga_drawing(
    timeline: Timeline | None, now: float | None = None, width: int = 80
) -> Group | Text:
    """The saga across the parts: one lane a part, one row an event (or a
    retry, a dead letter), with the time each step took and what it waits on."""
    if timeline is None or not len(timeline):
        return Text("no order selected: pick one in the list", style="dim")
    lane_width = max((width - GUTTER) // len(LANES), 6)
    header = Text("       t   step ".ljust(GUTTER), style="bold")
    for name in LANES:
        header.append(name[: lane_width - 1].ljust(lane_width), style="bold")
    lines = [Text(f"order {timeline.correlation_id}", style="bold")]
    if timeline.trace_id:  # its own line: beside the order's id it wraps in a narrow pane
        lines.append(Text(f"trace {timeline.trace_id}", style="dim"))
    lines.append(header)
    rows: list[tuple[float, TimelineEvent | Incident]] = [(e.at, e) for e in timeline]
    rows += [(i.at, i) for i in timeline.incidents]
    for _, item in sorted(rows, key=lambda r: r[0]):
        if isinstance(item, Incident):
            where = item.part
            label = (
                f"↻ {item.event_type} #{item.attempt}"
                if item.kind == "retry"
                else f"✖ dead letter: {item.event_type}"
            )
            took = ""
        else:
            step = timeline.step_time(item)
            where, label = item.source, f"● {item.type}"
            if item.deliveries > 1:
                label += f" x{item.deliveries}"
            took = "" if step is None else f"{step * 1000:.0f}ms" if step < 10 else f"{step:.1f}s"
        offset = item.at - (timeline.started_at or item.at)
        head = Text(f"{offset:7.3f} {took:>6} ", style="dim")
        lane = LANES.index(where) if where in LANES else None
        lines.append(_lane_row(width, lane, label, style_of(item), head))
    waiting = timeline.waiting_on()
    if timeline.outcome is not None:  # an orchestrated one may still be compensating
        lines.append(Text(timeline.outcome, style=style_of(timeline.events[-1])))
    if waiting is not None:
        lane = LANES.index(waiting.part) if waiting.part in LANES else None
        lines.append(_lane_row(width, lane, "…", "bold yellow", Text("")))
        lines.append(Text(waiting.describe(now, digits=0), style="bold yellow"))
    return Group(*lines)


def order_status(timeline: Timeline, now: float | None = None) -> Text:
    if timeline.outcome == "COMPLETED":
        return Text("COMPLETED", style="bold green")
    if timeline.outcome:
        return Text(timeline.outcome, style="red")
    waiting = timeline.waiting_on()
    if waiting is None:
        return Text("…")
    return Text(f"⧗ {waiting.event} {waiting.age(now):.0f}s", style="yellow")


class SagaPane(TabPane):
    class Moved(Message):
        """The list changed what it shows: a new order, or the user's choice."""

    def __init__(
        self, title: str, store: TimelineStore, clock: Callable[[], float], *, id: str
    ) -> None:
        super().__init__(title, id=id)
        self.store = store
        self.clock = clock
        self.open_orders: set[str] = set()  # listed and not over: their ages move
        self.known: dict[str, None] = {}  # every order the store keeps (the status line's count)
        self.selected: str | None = None
        self.follow = True
        self.drawing: Any = None  # what the pane shows of the chosen saga

    def compose(self) -> ComposeResult:
        with Horizontal(id="saga-body"):
            yield OrderList(max_rows=MAX_ORDERS, id="orders")
            yield Static(id="timeline")

    def on_mount(self) -> None:
        self.query_one("#timeline", Static).update(saga_drawing(None))

    @staticmethod
    def is_order(timeline: Timeline) -> bool:
        return any(e.source in LANES for e in timeline) and ":" not in timeline.correlation_id

    @staticmethod
    def took(timeline: Timeline, now: float) -> str:
        """How long the saga took, or has run so far."""
        start = timeline.started_at or now
        end = timeline.events[-1].at if timeline.outcome else now
        taken = max(end - start, 0.0)
        return f"{taken:.0f}s" if taken >= 10 else f"{taken:.1f}s"

    def take(self, changed: Iterable[str], now: float) -> None:
        """Sagas that just changed: listed or updated, the newest followed."""
        orders = self.query_one(OrderList)
        changed = list(changed)
        newest = None
        for correlation in changed:
            timeline = self.store.get(correlation)
            if timeline is None or not self.is_order(timeline):
                continue
            status, took = order_status(timeline, now), self.took(timeline, now)
            if correlation not in orders:
                newest = correlation
                self._known(correlation)
            # past MAX_ORDERS the oldest leave the list
            for gone in orders.put(correlation, (correlation[:8], status, took)):
                self.open_orders.discard(gone)
            if timeline.outcome is None:
                self.open_orders.add(correlation)
            else:
                self.open_orders.discard(correlation)
        if newest is not None:
            self.post_message(self.Moved())
        if newest is not None and self.follow:
            self.select(newest)
        elif self.selected in changed:
            self.draw_selected()

    def _known(self, correlation: str) -> None:
        """One more order; past the store's bound, those it forgot leave."""
        self.known[correlation] = None
        bound = self.store.max_sagas
        if bound is not None and len(self.known) > bound:
            self.known = {c: None for c in self.known if c in self.store.timelines}

    def tick(self) -> None:
        """Running sagas' times move on even when nothing arrives."""
        now = self.clock()
        orders = self.query_one(OrderList)
        for correlation in list(self.open_orders):
            timeline = self.store.get(correlation)
            if timeline is not None and correlation in orders:
                row = (correlation[:8], order_status(timeline, now), self.took(timeline, now))
                orders.put(correlation, row)
        selected = self.store.get(self.selected) if self.selected else None
        # waiting: not over, or an orchestrated one still compensating
        if selected is not None and selected.waiting_on() is not None:
            self.draw_selected()

    def select(self, correlation: str) -> None:
        self.selected = correlation
        orders = self.query_one(OrderList)
        if correlation in orders:
            row = orders.index_of(correlation)
            if orders.cursor != row:
                orders.move_cursor(row)
        self.draw_selected()

    def draw_selected(self) -> None:
        timeline = self.store.get(self.selected) if self.selected else None
        pane = self.query_one("#timeline", Static)
        self.drawing = saga_drawing(timeline, self.clock(), pane.size.width or 80)
        # its size is the pane's (app.tcss), whatever it shows: no layout
        pane.update(self.drawing, layout=False)

    def toggle_follow(self) -> None:
        self.follow = not self.follow
        newest = next(
            (c for c in reversed(self.store.timelines) if self.is_order(self.store.timelines[c])),
            None,
        )
        if self.follow and newest:
            self.select(newest)

    @on(OrderList.Chosen, "#orders")
    def _order_chosen(self, message: OrderList.Chosen) -> None:
        self.follow = False  # the user chose an order
        self.selected = message.key
        self.draw_selected()
        self.post_message(self.Moved())
