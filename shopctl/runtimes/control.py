"""Stopping, starting, pausing and restarting one part of a running stack,
or its broker: one entry for the CLI, the scenarios and the TUI."""

from __future__ import annotations

from shopctl.errors import UsageError
from shopctl.runtimes.base import Progress, Runtime
from shopctl.stack import part

ACTIONS = ("restart", "stop", "start", "pause", "resume")
DONE = {
    "restart": "restarted",
    "stop": "stopped",
    "start": "started",
    "pause": "paused",
    "resume": "resumed",
}
BROKER = ("broker", "rabbitmq")


def check(action: str, name: str) -> None:
    """UsageError (exit 2) for an action or part that does not exist."""
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}; use {', '.join(ACTIONS)}")
    if name in BROKER:
        if action != "restart":
            raise UsageError(f"the broker can be restarted, not {DONE[action]}")
        return
    part(name)


def control(runtime: Runtime, action: str, name: str, progress: Progress) -> None:
    """Do ``action`` to part ``name`` (or the broker) and, for restart and
    start, wait until it is ready again."""
    check(action, name)
    if name in BROKER:
        runtime.restart_broker(progress)
    elif action == "restart":
        runtime.restart(name, progress)
    elif action == "stop":
        runtime.stop_part(name, progress)
    elif action == "start":
        runtime.start_part(name, progress)
    elif action == "pause":
        runtime.pause_part(name)
    else:
        runtime.resume_part(name)
