"""The sandbox's lock says who a second shopctl waits for."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from shopctl.errors import ShopError
from shopctl.runtimes.lock import sandbox_lock


def _hold(path: Path, name: str | None, write_after_s: float, release_after_s: float) -> None:
    """Take the lock as another shopctl does, write its name a little later."""
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        time.sleep(write_after_s)
        if name is not None:
            handle.write(name)
            handle.flush()
        time.sleep(release_after_s)
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)


def _holding(tmp_path: Path, name: str | None, write_after_s: float, release_after_s: float):
    path = tmp_path / "lock"
    path.touch()
    taken = threading.Thread(target=_hold, args=(path, name, write_after_s, release_after_s))
    taken.start()
    time.sleep(0.05)  # it holds the lock, its name not written yet
    return taken


def test_a_waiter_started_with_the_holder_names_it_once_it_has_written(tmp_path: Path) -> None:
    holder = _holding(tmp_path, "shopctl up (pid 42)", write_after_s=0.2, release_after_s=0.3)
    told: list[str] = []
    with sandbox_lock(tmp_path, "up", wait_s=5, on_wait=told.append):
        assert (tmp_path / "lock").read_text() == f"shopctl up (pid {os.getpid()})"
    holder.join()
    assert told == ["shopctl up (pid 42)"]


def test_a_holder_that_never_names_itself_is_another_shopctl(tmp_path: Path) -> None:
    holder = _holding(tmp_path, None, write_after_s=0, release_after_s=2.0)
    told: list[str] = []
    with (
        pytest.raises(ShopError, match="another shopctl still holds it"),
        sandbox_lock(tmp_path, "down", wait_s=0.3, on_wait=told.append),
    ):
        pass
    holder.join()
    assert told == ["another shopctl"]
