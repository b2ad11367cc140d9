"""The Faults pane: a fault switched on from a form (part, event, kind,
order, times, ms), the faults on in every part, c clears a part's."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Select

from services.common.faults import FAULT_KINDS, FaultSpec, refusal
from tui.panes.common import SidePane
from tui.widgets import LANES, FaultTable


class FaultsPane(SidePane):
    def compose(self) -> ComposeResult:
        # two rows: both hold their words at 80 columns
        with Horizontal(classes="fault-form"):
            yield Select([(p, p) for p in LANES], prompt="part", id="fault-part")
            yield Input(placeholder="event", id="fault-event")
            yield Select([(k, k) for k in FAULT_KINDS], prompt="kind", id="fault-kind")
        with Horizontal(classes="fault-form"):
            yield Input(placeholder="order", id="fault-order", max_length=36)
            yield Input(placeholder="times", id="fault-times", type="integer")
            yield Input(placeholder="ms", id="fault-ms", type="integer")
            yield Button("switch on", id="fault-on", variant="warning")
        yield FaultTable(id="faults-table", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one(FaultTable).add_columns("part", "fault", "event", "kind", "order", "used")

    async def read(self) -> None:
        """The faults on in every part, read again."""
        if self.backend is None:
            return
        table = self.query_one(FaultTable)
        table.clear()
        for part in LANES:
            found = await self.backend.inflight(part)
            for fault in (found or {}).get("faults") or []:
                table.add_row(
                    part,
                    fault.get("id", "?"),
                    fault.get("event", "?"),
                    fault.get("kind", "?"),
                    (fault.get("order") or "any")[:8],
                    f"{fault.get('used', 0)}/{fault.get('times') or '∞'}",
                    key=f"{part}:{fault.get('id')}",
                )

    @on(Button.Pressed, "#fault-on")
    async def _switch_on(self) -> None:
        if self.backend is None:
            return
        part = self.query_one("#fault-part", Select).value
        kind = self.query_one("#fault-kind", Select).value
        event = self.query_one("#fault-event", Input).value.strip()
        times = self.query_one("#fault-times", Input).value.strip()
        ms = self.query_one("#fault-ms", Input).value.strip()
        order = self.query_one("#fault-order", Input).value.strip()
        if part is Select.BLANK or kind is Select.BLANK or not event:
            self.notify("a fault needs a part, an event and a kind", severity="error")
            return
        try:
            spec = FaultSpec(
                part=str(part),
                event=event,
                kind=str(kind),
                order=order or None,  # FaultSpec refuses fewer than 8 characters
                times=int(times) if times else None,
                ms=int(ms) if ms else 0,
            )
            await self.backend.set_fault(spec)
        except Exception as exc:
            why = refusal(exc) if isinstance(exc, ValidationError) else getattr(exc, "message", exc)
            self.notify(f"fault refused: {why}", severity="error")
            return
        self.notify(f"fault {spec.id} on: {part} {kind} {event}")
        await self.read()

    async def clear(self) -> None:
        key = self.row_key(self.query_one(FaultTable))
        if key is None or self.backend is None:
            return
        part = key.split(":", 1)[0]
        await self.backend.clear_faults(part)
        self.notify(f"faults off on {part}")
        await asyncio.sleep(0.2)
        await self.read()
