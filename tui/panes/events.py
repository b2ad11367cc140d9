"""The Events pane: every event and incident as `shopctl trace` prints it,
newest last, narrowed by a filter (an event type, a part or an order)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, RichLog, TabPane

from shopctl.observe.timeline import Incident, TimelineEvent, TimelineStore
from shopctl.observe.trace import trace_line
from tui.widgets import FilterInput

STREAM_LINES = 2000
SHOWN_AGAIN = 200  # stream lines drawn when its pane comes back into view
Item = TimelineEvent | Incident


class EventsPane(TabPane):
    def __init__(self, title: str, store: TimelineStore, *, id: str) -> None:
        super().__init__(title, id=id)
        self.store = store  # the app's: a line names its step from the saga
        self.recent: deque[Item] = deque(maxlen=STREAM_LINES)
        self.filter_text = ""
        self.stale = False  # events arrived while the stream was hidden

    def compose(self) -> ComposeResult:
        yield FilterInput(
            placeholder="filter: an event type, a part or an order (esc: leave)", id="filter"
        )
        yield RichLog(id="stream", max_lines=STREAM_LINES, wrap=False, markup=False)

    def take(self, items: Iterable[Item], shown: bool) -> None:
        """Items just added to the store: written now when the pane shows,
        else when it is shown again."""
        accepted = []
        for item in items:
            self.recent.append(item)
            if self.accepts(item):
                accepted.append(item)
        if not shown:
            self.stale = self.stale or bool(accepted)
            return
        stream = self.query_one("#stream", RichLog)
        for item in accepted[-STREAM_LINES:]:  # a burst writes only what the stream keeps
            stream.write(trace_line(self.store, item))

    def accepts(self, item: Item) -> bool:
        text = self.filter_text.lower()
        if not text:
            return True
        words = [item.correlation_id.lower()]
        if isinstance(item, Incident):
            words += [item.kind, item.event_type.lower(), item.part]
        else:
            words += [item.type.lower(), item.source]
        return any(w.startswith(text) or text == w for w in words)

    def shown_again(self) -> None:
        if self.stale:
            self.redraw(SHOWN_AGAIN)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, message: Input.Changed) -> None:
        self.filter_text = message.value.strip()
        self.redraw()

    def redraw(self, lines: int = STREAM_LINES) -> None:
        """The stream drawn again from what was kept: all of it for a new
        filter, the last screenfuls when its pane comes back into view."""
        self.stale = False
        stream = self.query_one("#stream", RichLog)
        stream.clear()
        accepted = [item for item in self.recent if self.accepts(item)]
        for item in accepted[-lines:]:
            stream.write(trace_line(self.store, item))
