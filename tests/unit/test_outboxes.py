"""`trace --since` rebuilds the bus's history from the outboxes in the order
the events happened, not the order their transactions began; `why` takes
the start of an order id."""

from __future__ import annotations

import json

import pytest

from shopctl.errors import UsageError
from shopctl.observe.outboxes import event_time, pick


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


def test_the_start_of_an_order_id_picks_the_one_order_or_names_them_all():
    one = "7da6f07f-cacb-4312-a7a0-d926024283e9"
    other = "7da6f07f-0000-4000-8000-000000000002"
    assert pick("7da6f07f", [one]) == one
    assert pick("7da6f07f", []) == "7da6f07f"  # the caller then says no order has it
    with pytest.raises(UsageError) as raised:
        pick("7da6f07f", [one, other])
    assert raised.value.exit_code == 2
    assert one in raised.value.message and other in raised.value.message
    assert raised.value.message.startswith("7da6f07f is the start of 2 order ids")
    many = [f"7da6f07f-0000-4000-8000-00000000000{n}" for n in range(6)]
    with pytest.raises(UsageError, match="more than 5 order ids"):
        pick("7da6f07f", many)
