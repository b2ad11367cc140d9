"""The TUI's side panes, one widget each: parts, dead letters, scenarios,
faults. Each holds its own table and what it does; a pane that changed the
stack says so with ``Changed``, and the app refreshes what shows it."""

from __future__ import annotations

from textual.message import Message


class Changed(Message):
    """Something a pane did changed the stack (a restart, a replay, a fault):
    the panes that show it are read again."""
