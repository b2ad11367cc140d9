"""The Events pane: every event and incident as `shopctl trace` prints it,
newest last, narrowed by a filter (an event type, a part or an order)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, TabPane

from shopctl.observe.timeline import Incident, TimelineEvent, TimelineStore
from shopctl.observe.trace import trace_line
from tui.lines import StreamLog
from tui.widgets import FilterInput

STREAM_LINES = 2000
Item = TimelineEvent | Incident


class EventsPane(TabPane):
    def __init__(self, title: str, store: TimelineStore, *, id: str) -> None:
        super().__init__(title, id=id)
        self.store = store  # the app's: a line names its step from the saga
        self.recent: deque[Item] = deque(maxlen=STREAM_LINES)
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield FilterInput(
            placeholder="filter: an event type, a part or an order (esc: leave)", id="filter"
        )
        yield StreamLog(self.line_of, max_rows=STREAM_LINES, id="stream")

    def line_of(self, item: Item) -> Text:
        return trace_line(self.store, item)

    def take(self, items: Iterable[Item]) -> None:
        """Items just added to the store, into the stream (drawn when in view)."""
        accepted = []
        for item in items:
            self.recent.append(item)
            if self.accepts(item):
                accepted.append(item)
        # a burst writes only what the stream keeps
        self.query_one("#stream", StreamLog).write_many(accepted[-STREAM_LINES:])

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

    @on(Input.Changed, "#filter")
    def _filter_changed(self, message: Input.Changed) -> None:
        self.filter_text = message.value.strip()
        self.redraw()

    def redraw(self) -> None:
        """The stream again from what was kept (a new filter)."""
        stream = self.query_one("#stream", StreamLog)
        stream.clear()
        stream.write_many([item for item in self.recent if self.accepts(item)][-STREAM_LINES:])
