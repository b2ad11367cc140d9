"""The sandbox's TUI: parts, the live event stream, orders, the selected
order's saga drawn across the parts, dead letters, scenarios and fault
switches, all on the one timeline model that `shopctl trace`, `shopctl why`
and the scenarios read.

Events come from a tap (shopctl.observe.timeline.Tap) on the app's own event
loop. An event alone is drawn at once; under a burst, what arrives while one
draw is waiting or running is drawn together with it, at most one draw every
MIN_GAP_S, so a thousand a second cost a few dozen draws, and keys (queued
ahead of the draw) are answered meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from tui.lines import StreamLog
from tui.panes import Changed
from tui.panes.dead import DeadLettersPane
from tui.panes.events import EventsPane
from tui.panes.faults import FaultsPane
from tui.panes.parts import PartsPane
from tui.panes.saga import SagaPane
from tui.panes.scenarios import ScenariosPane

FULL_COLLECTION_QUIET_S = 5.0  # a full garbage collection in a quiet second, this far apart
FULL_COLLECTION_EVERY_S = 60.0  # and at least this often under a burst that never ends
MIN_GAP_S = 0.016  # between two draws of the stream; the screen paints at most 60 a second
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
        self._draw_asked = False  # a draw of what is pending is on its way
        self._last_draw = 0.0  # time.monotonic() of the last one
        self._fed = 0  # items taken, ever (a second without one is quiet)
        self.shown_at: dict[str, float] = {}  # event id -> when it was drawn (lag)
        self._unpainted: list[str] = []  # event ids drawn, not yet on the screen
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
        self._collect_when_quiet()
        self._narrow()
        self.set_interval(1.0, self._quietly(lambda: self.query_one(SagaPane).tick()))
        self.set_interval(1.0, self._full_collection)
        if self.backend is not None:
            self.set_interval(2.0, self.refresh_side_panes)
            self.refresh_side_panes()
        if self.use_tap:
            self.run_tap()
        self._status()

    def _collect_when_quiet(self) -> None:
        """Python's full garbage collections, moved to quiet moments. What
        is alive at start (Textual, the modules, the widgets) lives as long
        as the app: frozen, out of every pass. The full passes the collector
        would start by itself came every half second under a burst of a
        thousand events a second, each holding every draw and key for 30 to
        160 ms (bench/tui_lag.py); they run instead in a second with no
        event, or once a minute under a burst that never ends."""
        gc.freeze()
        self._gc_threshold = gc.get_threshold()
        generation0, generation1, _ = self._gc_threshold
        gc.set_threshold(generation0, generation1, 1_000_000)
        self._fed_since_collection = 0
        self._last_collection = time.monotonic()

    def on_unmount(self) -> None:
        """The collector as it was (an app run inside another program, as
        the tests run it, leaves it to that program)."""
        gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()

    def _full_collection(self) -> None:
        since = time.monotonic() - self._last_collection
        quiet = self._fed_since_collection == self._fed
        if (quiet and since > FULL_COLLECTION_QUIET_S) or since > FULL_COLLECTION_EVERY_S:
            gc.collect()
            self._last_collection = time.monotonic()
        self._fed_since_collection = self._fed

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
        """Take one event or incident (from the tap, or history); it is drawn
        with what else arrives before its draw comes round."""
        self.pending.append(item)
        self._fed += 1
        if self._draw_asked:
            return
        self._draw_asked = True
        wait = self._last_draw + MIN_GAP_S - time.monotonic()
        if wait <= 0:
            self.call_later(self._quietly(self.flush))
        else:
            asyncio.get_running_loop().call_later(wait, self.call_later, self._quietly(self.flush))

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
        """Draw what arrived since the last draw, all at once. It runs as a
        message of the app's, behind the keys already queued."""
        self._draw_asked = False
        self._last_draw = time.monotonic()
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        changed: dict[str, None] = {}
        added: list[TimelineEvent | Incident] = []
        now = self.clock()
        for item in batch:
            if isinstance(item, TimelineEvent):
                item = self.store.add(item)
                self._unpainted.append(item.id)
            else:
                self.store.add_incident(item)
            added.append(item)
            changed[item.correlation_id] = None
        self.query_one(EventsPane).take(added)
        self.query_one(SagaPane).take(changed, now)
        self.call_after_refresh(self.painted)

    def painted(self) -> None:
        """The screen shows what was drawn so far: the time of it, each
        event's (the lag). Called after the screen's next refresh, once the
        app is idle; bench/tui_lag.py calls it from the refresh itself."""
        if not self._unpainted:
            return
        now = self.clock()
        self.shown_at.update(dict.fromkeys(self._unpainted, now))
        self._unpainted = []
        if len(self.shown_at) > 50_000:  # the lag of recent events only
            self.shown_at = dict(list(self.shown_at.items())[-25_000:])

    @on(SagaPane.Moved)
    def _saga_moved(self) -> None:
        self._status()

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
        orders = len(self.query_one(SagaPane).known)
        follow = "follow" if self.follow else "pinned"
        # one line of a fixed height: no layout for it (a burst changes it often)
        self.query_one("#statusline", Static).update(
            f"tap: {self.tap_state} · {orders} orders · {follow} · "
            "1-6 panes, / filter, ctrl+t theme, q quit",
            layout=False,
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
        self.query_one("#stream", StreamLog).focus()

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
