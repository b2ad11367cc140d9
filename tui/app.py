"""The sandbox's TUI: parts, the live event stream, orders, the selected
order's saga drawn across the parts, dead letters, scenarios and fault
switches, all on the one timeline model that `shopctl trace`, `shopctl why`
and the scenarios read.

Events come from a tap (shopctl.observe.timeline.Tap) on the app's own event loop;
they are buffered and drawn ten times a second, so a burst of a thousand a
second costs one redraw per tick, and keys are answered meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
)

from shopctl.observe.history import HistoryThenLive
from shopctl.observe.timeline import (
    Incident,
    Tap,
    Timeline,
    TimelineEvent,
    TimelineStore,
)
from shopctl.observe.trace import style_of
from tui.backend import Backend
from tui.panes import Changed
from tui.panes.dead import DeadLettersPane
from tui.panes.events import EventsPane
from tui.panes.faults import FaultsPane
from tui.panes.parts import PartsPane
from tui.panes.scenarios import ScenariosPane
from tui.widgets import LANES, OrdersTable

FLUSH_S = 0.1
MAX_ORDERS = 500  # listed at once
MAX_SAGAS = 5000  # kept in memory


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
    lines = [Text(f"order {timeline.correlation_id}", style="bold"), header]
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
            took = f"{step * 1000:.0f}ms" if step is not None else ""
        offset = item.at - (timeline.started_at or item.at)
        head = Text(f"{offset:7.3f} {took:>6} ", style="dim")
        lane = LANES.index(where) if where in LANES else None
        lines.append(_lane_row(width, lane, label, style_of(item), head))
    waiting = timeline.waiting_on()
    if waiting is not None:
        lane = LANES.index(waiting.part) if waiting.part in LANES else None
        lines.append(_lane_row(width, lane, "…", "bold yellow", Text("")))
        lines.append(
            Text(
                f"waiting on {waiting.event} from {waiting.part}, {waiting.age(now):.0f} s",
                style="bold yellow",
            )
        )
    else:
        lines.append(Text(timeline.outcome or "", style=style_of(timeline.events[-1])))
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


class ShopTui(App[None]):
    """shop sandbox: the saga, live."""

    TITLE = "shop sandbox"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+t", "toggle_theme", "light/dark"),
        Binding("1", "tab('saga')", "saga", show=False),
        Binding("2", "tab('events')", "events", show=False),
        Binding("3", "tab('parts')", "parts", show=False),
        Binding("4", "tab('dead')", "dead letters", show=False),
        Binding("5", "tab('scenarios')", "scenarios", show=False),
        Binding("6", "tab('faults')", "faults", show=False),
        Binding("slash", "filter", "filter", show=False),
    ]

    def __init__(
        self,
        backend: Backend | None,
        *,
        tap: bool = True,
        history_s: float = 300.0,
        clock: Any = time.time,
        broker_url: str | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.broker_url = broker_url or (backend.broker_url if backend is not None else None)
        self.use_tap = tap and self.broker_url is not None
        self.history_s = history_s
        self.clock = clock
        self.store = TimelineStore(max_sagas=MAX_SAGAS)
        self.listed: deque[str] = deque()  # the orders in the list, oldest first
        self.open_orders: set[str] = set()  # listed and not over: their ages move
        self.keys_handled: list[float] = []  # perf_counter of each pane switch
        self.pending: list[TimelineEvent | Incident] = []
        self.selected: str | None = None
        self.follow = True
        self.shown_at: dict[str, float] = {}  # event id -> when it was drawn (lag)
        self.tap_state = "not connected"
        self.drawing: Any = None  # what the saga pane shows

    # layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="saga"):
            with TabPane("Saga", id="saga"), Horizontal(id="saga-body"):
                yield OrdersTable(id="orders", cursor_type="row")
                yield Static(id="timeline")
            yield EventsPane("Events", self.store, id="events")
            yield PartsPane("Parts", self.backend, id="parts")
            yield DeadLettersPane("Dead letters", self.backend, id="dead")
            yield ScenariosPane("Scenarios", self.backend, id="scenarios")
            yield FaultsPane("Faults", self.backend, id="faults")
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        orders = self.query_one("#orders", OrdersTable)
        orders.add_column("order", key="order", width=8)
        orders.add_column("status", key="status", width=30)
        orders.add_column("took", key="took", width=5)
        self.query_one("#timeline", Static).update(saga_drawing(None))
        self._narrow()
        self.set_interval(FLUSH_S, self._quietly(self.flush))
        self.set_interval(1.0, self._quietly(self._tick))
        if self.backend is not None:
            self.set_interval(2.0, self.refresh_side_panes)
            self.refresh_side_panes()
        if self.use_tap:
            self.run_tap()
        self._status()

    @staticmethod
    def _quietly(draw: Any) -> Any:
        """A timer's drawing, skipped while the screen is being torn down."""

        def run() -> None:
            with contextlib.suppress(NoMatches):
                draw()

        return run

    def on_resize(self) -> None:
        self._narrow()
        self.call_after_refresh(self._quietly(self._draw_selected))

    def _narrow(self) -> None:
        self.set_class(self.size.width < 110, "narrow")

    # events ----------------------------------------------------------------

    def feed(self, item: TimelineEvent | Incident) -> None:
        """Take one event or incident (from the tap, or history)."""
        self.pending.append(item)

    @work(exclusive=True, group="tap")
    async def run_tap(self) -> None:
        assert self.broker_url is not None
        while True:
            merged = HistoryThenLive(self.feed)  # self.pending is swapped at each flush
            try:
                async with Tap(self.broker_url, on_event=merged.live):
                    self.tap_state = "live"
                    self._status()
                    if self.history_s and self.backend is not None:
                        await merged.load(self.backend.runtime, self.history_s)
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: say so, try again
                self.tap_state = f"broker unreachable ({type(exc).__name__}); retrying"
                self._status()
                await asyncio.sleep(3)

    def flush(self) -> None:
        """Draw what arrived since the last tick, all at once."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        changed: dict[str, None] = {}
        added: list[TimelineEvent | Incident] = []
        now = self.clock()
        for item in batch:
            if isinstance(item, TimelineEvent):
                item = self.store.add(item)
                self.shown_at[item.id] = now
            else:
                self.store.add_incident(item)
            added.append(item)
            changed[item.correlation_id] = None
        events = self.query_one(EventsPane)
        events.take(added, shown=self.query_one(TabbedContent).active == "events")
        orders = self.query_one("#orders", OrdersTable)
        newest = None
        for correlation in changed:
            timeline = self.store.get(correlation)
            if timeline is None or not self._is_order(timeline):
                continue
            status, took = order_status(timeline, now), self._took(timeline, now)
            if correlation in orders.rows:
                orders.update_cell(correlation, "status", status)
                orders.update_cell(correlation, "took", took)
            else:
                orders.add_row(correlation[:8], status, took, key=correlation)
                self.listed.append(correlation)
                newest = correlation
            if timeline.outcome is None:
                self.open_orders.add(correlation)
            else:
                self.open_orders.discard(correlation)
        while len(self.listed) > MAX_ORDERS:  # the oldest leave the list
            gone = self.listed.popleft()
            orders.remove_row(gone)
            self.open_orders.discard(gone)
        if newest is not None:
            self._status()
        if newest is not None and self.follow:
            self.select(newest)
        elif self.selected in changed:
            self._draw_selected()
        if len(self.shown_at) > 50_000:  # the lag of recent events only
            self.shown_at = dict(list(self.shown_at.items())[-25_000:])

    def _is_order(self, timeline: Timeline) -> bool:
        return any(e.source in LANES for e in timeline) and ":" not in timeline.correlation_id

    def _took(self, timeline: Timeline, now: float) -> str:
        """How long the saga took, or has run so far."""
        start = timeline.started_at or now
        end = timeline.events[-1].at if timeline.outcome else now
        took = max(end - start, 0.0)
        return f"{took:.0f}s" if took >= 10 else f"{took:.1f}s"

    def _tick(self) -> None:
        """Running sagas' times move on even when nothing arrives."""
        now = self.clock()
        orders = self.query_one("#orders", OrdersTable)
        for correlation in list(self.open_orders):
            timeline = self.store.get(correlation)
            if timeline is not None and correlation in orders.rows:
                orders.update_cell(correlation, "status", order_status(timeline, now))
                orders.update_cell(correlation, "took", self._took(timeline, now))
        selected = self.store.get(self.selected) if self.selected else None
        if selected is not None and selected.outcome is None:
            self._draw_selected()

    def select(self, correlation: str) -> None:
        self.selected = correlation
        orders = self.query_one("#orders", OrdersTable)
        if correlation in orders.rows:
            row = orders.get_row_index(correlation)
            if orders.cursor_row != row:
                orders.move_cursor(row=row)
        self._draw_selected()

    def _draw_selected(self) -> None:
        timeline = self.store.get(self.selected) if self.selected else None
        pane = self.query_one("#timeline", Static)
        self.drawing = saga_drawing(timeline, self.clock(), pane.size.width or 80)
        self.query_one("#timeline", Static).update(self.drawing)

    @on(DataTable.RowHighlighted, "#orders")
    def _order_highlighted(self, message: DataTable.RowHighlighted) -> None:
        orders = self.query_one("#orders", OrdersTable)
        key = message.row_key.value
        if not orders.user_moved or key is None:
            return  # the app moved the cursor
        orders.user_moved = False
        self.follow = False  # the user chose an order
        self.selected = str(key)
        self._draw_selected()
        self._status()

    @on(TabbedContent.TabActivated)
    def _pane_shown(self, message: TabbedContent.TabActivated) -> None:
        if message.pane.id == "events":
            self.query_one(EventsPane).shown_again()

    # side panes ------------------------------------------------------------

    @work(exclusive=True, group="side")
    async def refresh_side_panes(self) -> None:
        """Parts and dead letters read again (and the faults, when shown)."""
        assert self.backend is not None
        try:
            parts = await self.backend.parts()
        except Exception as exc:
            self.notify(f"parts: {exc}", severity="error")
            parts = []
        self.query_one(PartsPane).show(parts)
        try:
            depths = await self.backend.dead_letter_depths()
        except Exception:
            depths = {}
        self.query_one(DeadLettersPane).show(depths)
        if self.query_one(TabbedContent).active == "faults":
            await self.query_one(FaultsPane).read()
        self._status()

    @on(Changed)
    def _stack_changed(self) -> None:
        self.refresh_side_panes()

    def _status(self) -> None:
        orders = sum(1 for t in self.store.timelines.values() if self._is_order(t))
        follow = "follow" if self.follow else "pinned"
        self.query_one("#statusline", Static).update(
            f"tap: {self.tap_state} · {orders} orders · {follow} · "
            "1-6 panes, / filter, ctrl+t theme, q quit"
        )

    # actions ---------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.keys_handled.append(time.perf_counter())
        self.query_one(TabbedContent).active = tab
        focus = {
            "saga": "#orders",
            "events": "#stream",
            "parts": "#parts-table",
            "dead": "#dead-letters",
            "scenarios": "#scenarios-table",
            "faults": "#fault-part",
        }[tab]
        self.query_one(focus).focus()
        if tab == "faults" and self.backend is not None:
            self.refresh_side_panes()

    def action_leave_filter(self) -> None:
        self.query_one("#stream", RichLog).focus()

    def action_filter(self) -> None:
        self.action_tab("events")
        self.query_one("#filter", Input).focus()

    def action_follow(self) -> None:
        self.follow = not self.follow
        newest = next(
            (c for c in reversed(self.store.timelines) if self._is_order(self.store.timelines[c])),
            None,
        )
        if self.follow and newest:
            self.select(newest)
        self._status()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    # the side panes' keys (bound on their tables) act in their pane

    @work(group="control")
    async def action_part(self, action: str) -> None:
        await self.query_one(PartsPane).control(action)

    @work(group="dead")
    async def action_inspect_dead(self) -> None:
        await self.query_one(DeadLettersPane).inspect()

    @work(group="dead")
    async def action_replay_dead(self) -> None:
        await self.query_one(DeadLettersPane).replay()

    @work(group="dead")
    async def action_purge_dead(self) -> None:
        await self.query_one(DeadLettersPane).purge()

    @work(exclusive=True, group="scenario")
    async def action_run_scenario(self) -> None:
        await self.query_one(ScenariosPane).run()

    @work(group="faults")
    async def action_clear_faults(self) -> None:
        await self.query_one(FaultsPane).clear()
