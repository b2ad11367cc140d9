"""What the side panes share: the backend they act through, and the key of
the row under a table's cursor."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, TabPane

from tui.backend import Backend


class SidePane(TabPane):
    """A pane that reads and acts on the sandbox through ``backend`` (None:
    a pane with nothing behind it, as the snapshot tests draw it)."""

    def __init__(self, title: str, backend: Backend | None, *, id: str) -> None:
        super().__init__(title, id=id)
        self.backend = backend

    def row_key(self, table: DataTable[Any]) -> str | None:
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None
