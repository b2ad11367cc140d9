"""Parts of the stack as child processes: start, wait until ready, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ShopError


@dataclass
class RunningPart:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 12) -> str:
        """The last log records (tracebacks' frame lines left out)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        records = [line for line in text if line[:1].isdigit()] or text
        return "\n".join(records[-lines:])


def start_process(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    log_dir: Path,
    *,
    truncate: bool = False,
) -> RunningPart:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb" if truncate else "ab") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signals only, not the terminal's
        )
    return RunningPart(name, port, process, log_path)


def is_ready(part: RunningPart, timeout: float = 2.0) -> bool:
    return url_ready(part.url, timeout)


def wait_ready(
    parts: list[RunningPart],
    deadline_s: float,
    on_ready: Callable[[RunningPart], None] | None = None,
) -> None:
    """Wait until every part answers /readyz with 200; raise ShopError naming
    the first that died or did not make it, with its last log lines."""
    deadline = time.monotonic() + deadline_s
    pending = list(parts)
    while pending:
        for part in list(pending):
            if part.process.poll() is not None:
                raise ShopError(
                    f"{part.name} exited with code {part.process.returncode} while starting",
                    hint=f"its last log lines:\n{part.log_tail()}",
                )
            if is_ready(part):
                pending.remove(part)
                if on_ready is not None:
                    on_ready(part)
        if pending and time.monotonic() > deadline:
            names = ", ".join(p.name for p in pending)
            raise ShopError(
                f"{names} did not become ready within {deadline_s:.0f} s",
                hint=f"last log lines of {pending[0].name}:\n{pending[0].log_tail()}",
            )
        if pending:
            time.sleep(0.2)


def stop_process(part: RunningPart, grace_s: float = 10.0) -> None:
    """SIGTERM (graceful: in-flight handlers finish), then SIGKILL."""
    if part.process.poll() is not None:
        return
    stop_pid(part.process.pid, grace_s)
    part.process.wait(timeout=5)  # reap it


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return True


def pid_runs(pid: int, needle: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``needle`` (so a
    recycled pid of someone else's process is never signalled)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return needle in cmdline


def stop_pid(pid: int, grace_s: float = 10.0) -> bool:
    """SIGTERM the process group, then SIGKILL after ``grace_s``. True if it
    needed the SIGKILL."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return False
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    while pid_alive(pid):
        time.sleep(0.05)
    return True


def url_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False
