"""Lists that draw only what changed (Textual's line API): the orders and
the event stream. A row is rendered once into a strip and kept until it
changes; a paint crops the kept strips of the rows in view. A burst of a
thousand events a second then costs a paint of a few new rows, where a
DataTable renders every visible row again after any change to one cell, and
a RichLog or a growing table asks for a layout of the whole screen."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


class CachedLines(ScrollView):
    """Rows by key, oldest first, at most ``max_rows`` (the oldest leave),
    under ``HEADER`` lines that do not scroll. A subclass renders a row
    (``render_row``) and, when it has one, the header (``render_header``)."""

    HEADER = 0
    CURSOR: ClassVar[str | None] = None  # the component class of the cursor's row

    def __init__(self, *, max_rows: int, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_rows = max_rows
        self._keys: deque[Hashable] = deque()
        self._rows: dict[Hashable, Any] = {}
        self._seq: dict[Hashable, int] = {}  # a row's place: its seq minus the oldest's
        self._next_seq = 0
        self._version: dict[Hashable, int] = {}
        self._strips: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)
        self.cursor: int | None = None  # a row's index
        self.width_needed = 0  # the widest row rendered (the virtual width)

    # the rows -----------------------------------------------------------

    def __contains__(self, key: Hashable) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._keys)

    def index_of(self, key: Hashable) -> int:
        return self._seq[key] - self._seq[self._keys[0]]

    def put(self, key: Hashable, row: Any) -> list[Hashable]:
        """A row added at the end, or changed where it is; the oldest rows
        that left the list for it (past ``max_rows``)."""
        if key in self._rows:
            self._rows[key] = row
            self._version[key] += 1
            self.refresh_line(self.HEADER + self.index_of(key))
            return []
        self._rows[key] = row
        self._version[key] = 0
        self._seq[key] = self._next_seq
        self._next_seq += 1
        self._keys.append(key)
        gone = []
        while len(self._keys) > self.max_rows:
            oldest = self._keys.popleft()
            del self._rows[oldest], self._seq[oldest], self._version[oldest]
            if self.cursor is not None:
                self.cursor = max(self.cursor - 1, 0)
            gone.append(oldest)
        self._resized()
        return gone

    def clear(self) -> None:
        self._keys.clear()
        self._rows.clear()
        self._seq.clear()
        self._version.clear()
        self.cursor = None
        self._resized()

    def _resized(self) -> None:
        """The rows moved: the list is painted again from the kept strips; a
        new size (a layout) only while the list grows or shrinks."""
        size = Size(self.width_needed, self.HEADER + len(self._keys))
        if size != self.virtual_size:
            self.virtual_size = size
        self.refresh()

    # drawing --------------------------------------------------------------

    def render_row(self, key: Hashable, row: Any, width: int, style: Style) -> Strip:
        raise NotImplementedError

    def render_header(self, width: int) -> Strip:
        return Strip.blank(width, self.rich_style)

    def strip_of(self, text: Text, width: int, style: Style) -> Strip:
        """A row's text as a strip of ``width`` cells (longer: cut), on
        ``style`` where the text has no style of its own."""
        segments = list(text.render(self.app.console))
        strip = Strip(segments, text.cell_len).apply_style(style)
        return strip.adjust_cell_length(width, style)

    def render_line(self, y: int) -> Strip:
        width = max(self.size.width, self.virtual_size.width)
        theme = self.app.theme
        if y < self.HEADER:
            key: tuple[Any, ...] = ("header", y, width, theme)
            strip = self._strips.get(key)
            if strip is None:
                strip = self._strips[key] = self.render_header(width)
            return strip.crop(self.scroll_offset.x, self.scroll_offset.x + self.size.width)
        index = self.scroll_offset.y + y - self.HEADER
        if not 0 <= index < len(self._keys):
            return Strip.blank(self.size.width, self.rich_style)
        row_key = self._keys[index]
        # the cursor's row alone looks different with the focus
        chosen = (self.has_focus,) if index == self.cursor else None
        key = (row_key, self._version[row_key], width, theme, chosen)
        strip = self._strips.get(key)
        if strip is None:
            style = self.rich_style
            if chosen is not None and self.CURSOR:
                style += self.get_component_rich_style(self.CURSOR)
            strip = self._strips[key] = self.render_row(row_key, self._rows[row_key], width, style)
        return strip.crop(self.scroll_offset.x, self.scroll_offset.x + self.size.width)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_resize(self) -> None:
        self._strips.clear()

    # the cursor -------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        """The cursor to a row, scrolled into view."""
        if not self._keys:
            return
        row = min(max(row, 0), len(self._keys) - 1)
        before, self.cursor = self.cursor, row
        for index in (before, row):
            if index is not None:
                self.refresh_line(self.HEADER + index)
        view = self.scrollable_content_region.height - self.HEADER
        top = round(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif view > 0 and row >= top + view:
            self.scroll_to(y=row - view + 1, animate=False, immediate=True)


class OrderList(CachedLines):
    """The orders, one a line (order, status, took), newest last; a move of
    the user's chooses one (``Chosen``), which the app's own moves do not."""

    HEADER = 1
    CURSOR = "order-list--cursor"
    COMPONENT_CLASSES: ClassVar[set[str]] = {"order-list--cursor", "order-list--header"}
    COLUMNS = (("order", 8), ("status", 30), ("took", 5))  # a cell's padding each side
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "app.follow", "follow newest"),
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "move(-10)", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("home", "move(-1000000)", show=False),
        Binding("end", "move(1000000)", show=False),
    ]
    DEFAULT_CSS = """
    OrderList {
        background: $surface;
        & > .order-list--header { text-style: bold; background: $panel; color: $foreground; }
        & > .order-list--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus {
            & > .order-list--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    class Chosen(Message):
        """The user moved the cursor onto an order."""

        def __init__(self, orders: OrderList, key: str) -> None:
            super().__init__()
            self.orders = orders
            self.key = key

        @property
        def control(self) -> OrderList:
            return self.orders

    def __init__(self, *, max_rows: int, id: str | None = None) -> None:
        super().__init__(max_rows=max_rows, id=id)
        self.can_focus = True
        self.width_needed = sum(width + 2 for _, width in self.COLUMNS)

    @staticmethod
    def _cells(values: Iterable[str | Text]) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for value, (_, width) in zip(values, OrderList.COLUMNS, strict=True):
            cell = value if isinstance(value, Text) else Text(value)
            cell = cell.copy()
            cell.truncate(width, overflow="ellipsis", pad=True)
            line.append(" ")
            line.append_text(cell)
            line.append(" ")
        return line

    def render_header(self, width: int) -> Strip:
        line = self._cells(name for name, _ in self.COLUMNS)
        style = self.rich_style + self.get_component_rich_style("order-list--header")
        return self.strip_of(line, width, style)

    def render_row(self, key: Hashable, row: Any, width: int, style: Style) -> Strip:
        return self.strip_of(self._cells(row), width, style)

    def action_move(self, by: int) -> None:
        if not self._keys:
            return
        self.move_cursor((self.cursor if self.cursor is not None else len(self._keys) - 1) + by)
        self._chosen()

    def _chosen(self) -> None:
        if self.cursor is not None:
            self.post_message(self.Chosen(self, str(self._keys[self.cursor])))

    async def _on_click(self, event: events.Click) -> None:
        index = round(self.scroll_offset.y) + event.y - self.HEADER
        if event.y >= self.HEADER and 0 <= index < len(self._keys):
            self.move_cursor(index)
            self._chosen()


class StreamLog(CachedLines):
    """Items shown a line each, newest last, kept up to ``max_rows``; it
    follows the newest while the view is at the end. An item becomes text
    (``line_of``) when it is first drawn, so what arrives while the list is
    out of view costs nothing but its place in the list."""

    DEFAULT_CSS = """
    StreamLog { background: $surface; }
    """

    def __init__(
        self, line_of: Callable[[Any], Text], *, max_rows: int, id: str | None = None
    ) -> None:
        super().__init__(max_rows=max_rows, id=id)
        self.can_focus = True
        self.line_of = line_of

    follow_end = True  # the view stays on the newest (until the user scrolls up)

    def write_many(self, items: Iterable[Any]) -> None:
        for item in items:
            self.put(self._next_seq, item)
        if self.follow_end:
            self.scroll_end(animate=False, x_axis=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.size.height:  # a scroll of the user's, or to the end
            self.follow_end = round(new_value) >= self.max_scroll_y

    def on_show(self) -> None:
        self._to_the_end()

    def on_resize(self) -> None:
        super().on_resize()
        self._to_the_end()

    def _to_the_end(self) -> None:
        """What came while out of view, or before the list had a size."""
        if self.follow_end:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)

    def render_row(self, key: Hashable, row: Any, width: int, style: Style) -> Strip:
        text = self.line_of(row)
        if text.cell_len > self.width_needed:  # a wider line: scrolls sideways, after this paint
            self.width_needed = text.cell_len
            self.call_after_refresh(self._resized)
        return self.strip_of(text, max(width, text.cell_len), style)

    @property
    def plain(self) -> list[str]:
        """The lines kept, as text (oldest first)."""
        return [self.line_of(self._rows[key]).plain for key in self._keys]
