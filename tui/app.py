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
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import (
    Footer,
    Header,
    Input,
    RichLog,
    Static,
    TabbedContent,
)

from shopctl.observe.history import HistoryThenLive
from shopctl.observe.timeline import (
    Incident,
    Tap,
    TimelineEvent,
    TimelineStore,
)
from tui.backend import Backend
from tui.panes import Changed
from tui.panes.dead import DeadLettersPane
from tui.panes.events import EventsPane
from tui.panes.faults import FaultsPane
from tui.panes.parts import PartsPane
from tui.panes.saga import SagaPane
from tui.panes.scenarios import ScenariosPane

FLUSH_S = 0.1
MAX_SAGAS = 5000  # kept in memory


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
        self.keys_handled: list[float] = []  # perf_counter of each pane switch
        self.pending: list[TimelineEvent | Incident] = []
        self.shown_at: dict[str, float] = {}  # event id -> when it was drawn (lag)
        self.tap_state = "not connected"

    # the saga pane's choice, as the app's (tests and the bench read them)

    @property
    def selected(self) -> str | None:
        return self.query_one(SagaPane).selected

    @property
    def follow(self) -> bool:
        return self.query_one(SagaPane).follow

    @property
    def drawing(self) -> Any:
        return self.query_one(SagaPane).drawing

    def select(self, correlation: str) -> None:
        self.query_one(SagaPane).select(correlation)

    # layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="saga"):
            yield SagaPane("Saga", self.store, self.clock, id="saga")
            yield EventsPane("Events", self.store, id="events")
            yield PartsPane("Parts", self.backend, id="parts")
            yield DeadLettersPane("Dead letters", self.backend, id="dead")
            yield ScenariosPane("Scenarios", self.backend, id="scenarios")
            yield FaultsPane("Faults", self.backend, id="faults")
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        self._narrow()
        self.set_interval(FLUSH_S, self._quietly(self.flush))
        self.set_interval(1.0, self._quietly(lambda: self.query_one(SagaPane).tick()))
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
        self.call_after_refresh(self._quietly(lambda: self.query_one(SagaPane).draw_selected()))

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
        self.query_one(SagaPane).take(changed, now)
        if len(self.shown_at) > 50_000:  # the lag of recent events only
            self.shown_at = dict(list(self.shown_at.items())[-25_000:])

    @on(SagaPane.Moved)
    def _saga_moved(self) -> None:
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
            alerts = await self.backend.alerts()
        except Exception:
            alerts = []
        self.query_one(PartsPane).show_alerts(alerts)
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
        orders = sum(1 for t in self.store.timelines.values() if SagaPane.is_order(t))
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
        self.query_one(SagaPane).toggle_follow()
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
