"""The Parts pane: each part's state, health, port, uptime and restarts,
and the alerts Prometheus says fire;
r, x, g, p, u restart, stop, start, pause and resume the one chosen."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from shopctl.runtimes.base import PartStatus
from shopctl.ui import uptime_text
from tui.panes import Changed
from tui.panes.common import SidePane
from tui.widgets import PartsTable

STATE_STYLE = {"running": "green", "paused": "yellow", "restarting": "yellow"}


class PartsPane(SidePane):
    def compose(self) -> ComposeResult:
        yield PartsTable(id="parts-table", cursor_type="row")
        alerts = Static(id="alerts")
        alerts.display = False  # shown while Prometheus says an alert fires
        yield alerts

    def show_alerts(self, alerts: list[str]) -> None:
        """The alerts firing now (Prometheus beside the stack), under the table."""
        pane = self.query_one("#alerts", Static)
        pane.display = bool(alerts)
        text = Text()
        for line in alerts:
            text.append("alert firing ", style="bold red")
            text.append(line + "\n")
        pane.update(text)

    def on_mount(self) -> None:
        self.query_one(PartsTable).add_columns(
            "part", "state", "health", "port", "uptime", "restarts"
        )

    def show(self, parts: list[PartStatus]) -> None:
        table = self.query_one(PartsTable)
        for status in parts:
            state = Text(status.state, style=STATE_STYLE.get(status.state, "red"))
            uptime = uptime_text(time.time() - status.started_at) if status.started_at else "-"
            cells = (
                status.name,
                state,
                status.health,
                str(status.port or "-"),
                uptime,
                str(status.restarts),
            )
            if status.name in table.rows:
                for column, value in zip(table.columns, cells, strict=True):
                    table.update_cell(status.name, column, value)
            else:
                table.add_row(*cells, key=status.name)

    async def control(self, action: str) -> None:
        part = self.row_key(self.query_one(PartsTable))
        if part is None or self.backend is None:
            return
        self.notify(f"{part}: {action}…")
        try:
            await self.backend.control(action, part)
        except Exception as exc:
            self.notify(
                f"{part}: {action} failed: {getattr(exc, 'message', exc)}", severity="error"
            )
            return
        self.notify(f"{part}: {action} done")
        self.post_message(Changed())
