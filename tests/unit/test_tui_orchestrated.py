"""The TUI's saga pane draws an orchestrated order: the commands in the
order's lane, and the orchestrator's state with its timer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
from rich.console import Console

from shopctl.observe.timeline import TimelineStore
from tui.panes.saga import saga_drawing

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_an_orchestrated_order_shows_what_the_orchestrator_waits_on_and_its_timer():
    order = str(uuid.uuid4())
    store = TimelineStore()
    cause = None
    steps = [
        ("CartCheckedOut", "cart", None),
        ("OrderCreated", "order", None),
        ("ReserveStock", "order", 30.0),
        ("StockReserved", "inventory", None),
        ("ChargePayment", "order", 30.0),
    ]
    for index, (kind, source, timer) in enumerate(steps):
        at = T0 + timedelta(seconds=index * 0.01)
        event_id = str(uuid.uuid4())
        envelope = {
            "specversion": "1.0",
            "id": event_id,
            "type": kind,
            "source": source,
            "time": at.isoformat(),
            "correlationid": order,
            "causationid": cause,
            "sagamode": "orchestrated",
            "data": {"order_id": order},
        }
        if timer is not None:
            envelope["sagadeadline"] = (at + timedelta(seconds=timer)).isoformat()
        store.add_message(orjson.dumps(envelope), "x")
        cause = event_id
    now = (T0 + timedelta(seconds=4.04)).timestamp()
    console = Console(width=100, record=True)
    console.print(saga_drawing(store.get(order), now=now, width=100))
    text = console.export_text()
    assert "● ChargePayment" in text and "● ReserveStock" in text
    assert "orchestrator: waiting on the payment reply to ChargePayment since 4 s" in text
    assert "its timer fires in 26 s" in text
