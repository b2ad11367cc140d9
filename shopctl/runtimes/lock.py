"""One `up`, `down` or `restart` at a time per sandbox: a lock on its state
folder. The second waits for the first and says who it waits for."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from shopctl.errors import ShopError

NAME_WAIT_S = 1.0  # how long a holder that has not written its name yet is given


@contextmanager
def sandbox_lock(
    state_dir: Path,
    command: str,
    wait_s: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold ``<state_dir>/lock`` while the body runs. When another shopctl
    holds it, call ``on_wait`` with who that is, then wait up to ``wait_s``;
    raise ShopError naming the holder when the wait runs out."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    with path.open("a+") as handle:
        holder = None if _try_lock(handle) else _named_holder(path, handle)
        if holder is not None:
            if on_wait is not None:
                on_wait(holder)
            deadline = time.monotonic() + wait_s
            while not _try_lock(handle):
                if time.monotonic() > deadline:
                    raise ShopError(
                        f"the sandbox in {state_dir} is busy: {holder} still holds it",
                        hint="wait for it to finish, or stop that process",
                    )
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"shopctl {command} (pid {os.getpid()})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _named_holder(path: Path, handle: IO[str]) -> str | None:
    """Who holds the lock; None when it was let go meanwhile and is ours now.
    The holder writes its name just after it takes the lock, so a shopctl
    started at the same moment can find the file still empty: the name is
    given a moment to appear."""
    named_by = time.monotonic() + NAME_WAIT_S
    while (holder := _holder(path)) is None and time.monotonic() < named_by:
        time.sleep(0.02)
        if _try_lock(handle):
            return None
    return holder or "another shopctl"


def _holder(path: Path) -> str | None:
    """Who holds the lock, as it wrote itself; None while it has not yet."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or None
