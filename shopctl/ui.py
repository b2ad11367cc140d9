"""Rich views for the CLI: the live `up` table, status, URLs, log lines."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from shopctl.runtimes.base import PartStatus, UpReport
from shopctl.runtimes.logs import LogLine

_STYLE = {
    "waiting": "dim",
    "starting": "yellow",
    "ready": "green",
    "external": "green",
    "failed": "bold red",
}
_PART_COLOURS = [
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
]


class UpDisplay:
    """A live table: each part going from waiting to ready."""

    def __init__(self, console: Console, parts: list[str]) -> None:
        self.console = console
        self.states: dict[str, tuple[str, str]] = {name: ("waiting", "") for name in parts}
        # the docker runtime reports from its start threads, and a part may
        # be new to the table (Prometheus): one update at a time
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=console, refresh_per_second=8, transient=False)

    def __enter__(self) -> UpDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.update(self._render(final=True))
        self._live.__exit__(kind, exc, tb)

    def update(self, part: str, state: str, detail: str = "") -> None:
        with self._lock:
            self.states[part] = (state, detail)
            self._live.update(self._render())

    def _render(self, final: bool = False) -> Table:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        for name, (state, detail) in self.states.items():
            marker: Spinner | Text
            if state == "starting" and not final:
                marker = Spinner("dots", style="yellow")
            else:
                marker = Text("●" if state in ("ready", "external") else "○", style=_STYLE[state])
            table.add_row(
                marker,
                Text(name, style="bold"),
                Text(state, style=_STYLE[state]),
                Text(detail, style="dim"),
            )
        return table


def summary(report: UpReport, admin_notice: str, extra_urls: dict[str, str]) -> Group:
    title = (
        f"[green]the stack is already running[/] ({report.runtime} runtime); nothing changed"
        if report.already_running
        else f"[green]stack ready in {report.elapsed_s:.1f} s[/] ({report.runtime} runtime)"
    )
    urls = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    for name, url in {**report.urls, **extra_urls}.items():
        urls.add_row(Text(name, style="bold"), Text(url, style="underline"))
    notes = [Text(note, style="yellow") for note in report.notes if note]
    return Group(*notes, Text.from_markup(title), urls, Text(admin_notice, style="dim"))


def status_table(rows: list[PartStatus]) -> Table:
    table = Table("part", "runtime", "state", "health", "port", "uptime", "restarts")
    now = time.time()
    for row in rows:
        state_style = {"running": "green", "exited": "red", "restarting": "yellow"}.get(
            row.state, "dim"
        )
        health_style = {"ready": "green", "not ready": "yellow"}.get(row.health, "dim")
        uptime = uptime_text(now - row.started_at) if row.started_at else "-"
        table.add_row(
            row.name,
            row.runtime,
            Text(row.state, style=state_style),
            Text(row.health, style=health_style),
            str(row.port) if row.port else "-",
            uptime,
            Text(str(row.restarts), style="yellow" if row.restarts else "dim"),
        )
    return table


def uptime_text(seconds: float) -> str:
    """42s, 5m07s, 2h03m: the status table's and the TUI's uptime."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LogPrinter:
    """One colour per part, a time column, then the line."""

    def __init__(self, console: Console, parts: list[str]) -> None:
        self.console = console
        self.width = max((len(p) for p in parts), default=8)
        self.colours = {p: _PART_COLOURS[i % len(_PART_COLOURS)] for i, p in enumerate(parts)}

    def print(self, line: LogLine) -> None:
        colour = self.colours.setdefault(
            line.part, _PART_COLOURS[len(self.colours) % len(_PART_COLOURS)]
        )
        stamp = line.timestamp[11:23] if line.timestamp else " " * 12
        text = Text()
        text.append(stamp, style="dim")
        text.append(" ")
        text.append(f"{line.part:<{self.width}}", style=colour)
        text.append(" | ", style="dim")
        text.append(line.text)
        self.console.print(text, soft_wrap=True, highlight=False)
