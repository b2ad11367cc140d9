"""The uptime the status table and the TUI's Parts pane show, one way."""

from __future__ import annotations

from shopctl.ui import uptime_text


def test_uptime_reads_in_seconds_minutes_then_hours():
    assert uptime_text(42.9) == "42s"
    assert uptime_text(601) == "10m01s"
    assert uptime_text(3600 * 2 + 60 * 3 + 59) == "2h03m"
