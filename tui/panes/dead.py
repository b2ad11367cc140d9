"""The Dead letters pane: each dead-letter queue and its depth; enter
inspects one (each letter's order, reason, attempts, error and body), R
replays it, X twice purges it."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import RichLog

from shopctl.observe.timeline import parse_event
from tui.panes import Changed
from tui.panes.common import SidePane
from tui.widgets import DeadLetterTable

PURGE_CONFIRM_S = 5.0  # the second X must come this soon


class DeadLettersPane(SidePane):
    _purge_armed: tuple[str, float] | None = None

    def compose(self) -> ComposeResult:
        yield DeadLetterTable(id="dead-letters", cursor_type="row")
        yield RichLog(id="dead-detail", wrap=True, markup=False)

    def on_mount(self) -> None:
        self.query_one(DeadLetterTable).add_columns("dead-letter queue", "messages")

    def show(self, depths: dict[str, int | None]) -> None:
        table = self.query_one(DeadLetterTable)
        for queue, count in depths.items():
            shown = Text("-" if count is None else str(count), style="red" if count else "")
            if queue in table.rows:
                table.update_cell(queue, table.ordered_columns[1].key, shown)
            else:
                table.add_row(queue, shown, key=queue)

    async def inspect(self) -> None:
        queue = self.row_key(self.query_one(DeadLetterTable))
        if queue is None or self.backend is None:
            return
        detail = self.query_one("#dead-detail", RichLog)
        detail.clear()
        letters = await self.backend.dead_letters(queue)
        if not letters:
            detail.write(f"{queue} is empty")
        for letter in letters:
            event = parse_event(letter.body, letter.origin)
            saga = f" order {event.correlation_id}" if event else ""
            detail.write(
                Text.assemble(
                    (f"{letter.type or '?'}", "bold"),
                    f"{saga} from {letter.origin}\n",
                    (f"  {letter.reason} after {letter.attempts} attempts: ", "red"),
                    f"{letter.error[:300]}\n  {letter.body[:200].decode(errors='replace')}",
                )
            )

    async def replay(self) -> None:
        queue = self.row_key(self.query_one(DeadLetterTable))
        if queue is None or self.backend is None:
            return
        count = await self.backend.replay(queue)
        self.notify(f"replayed {count} from {queue}")
        self.post_message(Changed())

    async def purge(self) -> None:
        queue = self.row_key(self.query_one(DeadLetterTable))
        if queue is None or self.backend is None:
            return
        armed = self._purge_armed
        if armed is None or armed[0] != queue or time.monotonic() - armed[1] > PURGE_CONFIRM_S:
            self._purge_armed = (queue, time.monotonic())
            self.notify(
                f"press X again to drop {queue}'s dead letters for good", severity="warning"
            )
            return
        self._purge_armed = None
        count = await self.backend.purge(queue)
        self.notify(f"purged {count} from {queue}")
        self.post_message(Changed())
