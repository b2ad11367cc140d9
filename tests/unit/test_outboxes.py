"""`trace --since` rebuilds the bus's history from the outboxes in the order
the events happened, not the order their transactions began."""

from __future__ import annotations

import json

from shopctl.outboxes import event_time


def body(time: str) -> str:
    return json.dumps({"type": "OrderCancelled", "time": time})


def test_events_sort_by_their_own_time_then_by_their_row():
    rows = [
        # (the row's created_at: its transaction's start, the event)
        ("2026-11-30 20:39:29.300+00", body("2026-11-30T20:39:29.356Z")),  # StockReleased
        ("2026-11-30 20:39:29.310+00", body("2026-11-30T20:39:29.354Z")),  # OrderCancelled
        ("2026-11-30 20:39:29.200+00", "not json"),
        ("2026-11-30 20:39:29.100+00", json.dumps({"time": 17})),
    ]
    ordered = sorted(rows, key=lambda row: event_time(*row))
    assert [row[0][-6:] for row in ordered] == ["100+00", "200+00", "310+00", "300+00"]
    assert event_time("", "") < event_time(*rows[0])  # nothing to go by: first, no error
