"""What a stuck process can still tell: its stacks on SIGUSR1.

A supervisor (``shopctl up``) that finds a part not ready by its deadline
sends SIGUSR1 and reads the part's log: every thread's stack from
faulthandler (written from the signal handler itself, so it shows even a
thread blocked in C) and, when the event loop still turns, every asyncio
task's stack, which is where an awaiting coroutine shows what it waits on.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import signal
import sys

DUMP_SIGNAL = signal.SIGUSR1
TASKS_HEADER = "asyncio tasks (SIGUSR1):"


def install_stack_dumps() -> None:
    """Register the dumps on the running loop; call once at start-up."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(DUMP_SIGNAL, _dump_tasks)
    # After the loop's handler, chaining to it: threads first, then tasks.
    faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=True)


def _dump_tasks() -> None:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(limit=20, file=out)
    sys.stderr.write(f"{TASKS_HEADER}\n{out.getvalue()}")
    sys.stderr.flush()
