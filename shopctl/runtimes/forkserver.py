"""Start several parts from one process that has imported them once, and
keep them running.

Each service imports for most of a CPU-second (FastAPI, SQLAlchemy,
alembic, aio-pika) and holds the same libraries in memory. The local
runtime starts one of these instead: it imports every app asked for, then
forks a supervisor, which forks one child per part. The children share the
imported pages with each other (copy on write; ``gc.freeze`` keeps the
collector from touching them) and start serving at once.

Run as ``python -m shopctl.runtimes.forkserver <app> [<app> ...]`` with the launches
as JSON on stdin::

    {"launches": [{"name", "app", "uvicorn", "env", "log", "truncate"}], "grace_s": 10}

It prints one line ``{"name": ..., "pid": ...}`` a child, then
``{"supervisor": pid}``, and exits; the supervisor stays. A child runs
uvicorn's command line with the launch's ``uvicorn`` arguments (those of
``shopctl.stack.uvicorn_args``, as the docker runtime's command), in its
own session (its process group is the part), its output appended to its
log, its environment replaced by the launch's, its process title
``shop <name> [local] <app>`` (so ``pgrep -f services.payment`` finds
payment alone). When it ends it writes its exit code to ``<log>.exit``
(minus the signal's number when a signal ended it, as Popen says).

The supervisor does what docker's ``unless-stopped`` restart policy does:
a part that exits is forked again after a back-off (0.1 s, doubling to
30 s, back to 0.1 s once a run lasted 10 s), from the imports it already
holds, and its restarts are counted. A part stopped by hand is not:
``<log>.stopped`` says so (written before the part is signalled), and once
that file is removed the part is started again. What it knows of each part
it writes to ``<log>.part`` (pid, state, restarts, started_at, last_exit).
On SIGTERM it stops every part it runs, all at once, and exits.

Importing the apps and uvicorn starts no thread, no event loop and no
connection: there is none in this process (nor in the supervisor) when it
forks.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 30.0
STEADY_S = 10.0  # a run this long resets the back-off
POLL_S = 0.25  # how often a stopped part's file is looked at
SUPERVISOR_TITLE = "shop supervisor [local]"


def exit_file(log: str | Path) -> Path:
    """Where a forked part writes its exit code."""
    return Path(f"{log}.exit")


def stopped_file(log: str | Path) -> Path:
    """Present while a part is stopped by hand: the supervisor leaves it down."""
    return Path(f"{log}.stopped")


def status_file(log: str | Path) -> Path:
    """What the supervisor knows of a part (pid, state, restarts)."""
    return Path(f"{log}.part")


def part_title(name: str, app: str) -> str:
    """A forked part's process title, as ps and pgrep -f show it."""
    return f"shop {name} [local] {app}"


def _set_title(title: str) -> None:
    """The process title ps shows (setproctitle, imported first in main())."""
    from setproctitle import setproctitle

    setproctitle(title)


def preload(apps: list[str]) -> None:
    """Import each app's module (and uvicorn's loop and protocols)."""
    for module in ("uvicorn.main", "uvloop", "uvicorn.loops.uvloop", "uvicorn.lifespan.on"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    for app in apps:
        with contextlib.suppress(Exception):  # its child imports it again and says why
            importlib.import_module(app.partition(":")[0])


class _Signalled(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, _frame: object) -> None:
    raise _Signalled(signum)


def _serve(launch: dict[str, Any]) -> int:
    """In the child: become the part, serve until told to stop."""
    os.setsid()  # its own session and process group: stopping it stops it only
    _set_title(part_title(str(launch["name"]), str(launch["app"])))
    with contextlib.suppress(OSError):  # what top shows
        Path("/proc/self/comm").write_text(str(launch["name"])[:15])
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if launch.get("truncate") else os.O_APPEND)
    log = os.open(launch["log"], flags, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ.clear()
    os.environ.update(launch["env"])
    gc.enable()
    # uvicorn, once shut down gracefully, raises the signal that stopped it
    # again: caught here, it becomes the code a waiting parent would see
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    from uvicorn.main import main as uvicorn_cli

    try:
        uvicorn_cli.main(args=launch["uvicorn"], prog_name="uvicorn")
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except _Signalled as stopped:
        return -stopped.signum
    except BaseException:  # the traceback goes to the part's log
        traceback.print_exc()
        return 1
    return 0


def _child(launch: dict[str, Any]) -> None:
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the supervisor blocks some
        code = _serve(launch)
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting anyway
                stream.flush()
        try:
            exit_file(launch["log"]).write_text(str(code))
        finally:
            os._exit(code)


@dataclass
class _Part:
    """One part as its supervisor sees it."""

    launch: dict[str, Any]
    pid: int = 0
    state: str = "running"  # running, restarting (backing off), stopped, retired
    restarts: int = 0
    streak: int = 0  # quick exits in a row: the back-off's exponent
    started_at: float = 0.0  # wall clock, for status
    started_mono: float = 0.0
    next_start: float = 0.0
    last_exit: int | None = None

    @property
    def log(self) -> str:
        return str(self.launch["log"])

    def fork(self) -> None:
        exit_file(self.log).unlink(missing_ok=True)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child({**self.launch, "truncate": False} if self.pid else self.launch)
        self.pid, self.state = pid, "running"
        self.started_at, self.started_mono = time.time(), time.monotonic()
        self.write()

    def write(self) -> None:
        status = {
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "last_exit": self.last_exit,
            "supervisor": os.getpid(),
        }
        target = status_file(self.log)
        temporary = target.with_name(target.name + ".tmp")
        with contextlib.suppress(OSError):  # its folder removed under it: nothing to tell
            temporary.write_text(json.dumps(status))
            temporary.replace(target)

    def exited(self, code: int) -> None:
        """Its process ended: stopped by hand, or to be started again."""
        self.last_exit = code
        if stopped_file(self.log).exists():
            self.state = "stopped"
        else:
            ran = time.monotonic() - self.started_mono
            self.streak = 0 if ran >= STEADY_S else self.streak + 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, self.streak - 1))
            self.state, self.next_start = "restarting", time.monotonic() + delay
        self.write()

    def owned(self) -> bool:
        """Whether this supervisor still runs the part: a later fork server
        (an `up` while it was stopped) writes the part's file as its own."""
        try:
            return int(json.loads(status_file(self.log).read_text())["supervisor"]) == os.getpid()
        except (OSError, ValueError, KeyError, TypeError):
            return True

    def tend(self) -> None:
        """Start it again when its back-off ended, or its stop was lifted
        (unless another supervisor took it over meanwhile: then never)."""
        if self.state in ("restarting", "stopped") and not self.owned():
            self.state = "retired"
            return
        held = stopped_file(self.log).exists()
        if self.state == "restarting" and held:
            self.state = "stopped"
            self.write()
        elif self.state == "restarting" and time.monotonic() >= self.next_start:
            self.restarts += 1
            self.fork()
        elif self.state == "stopped" and not held:
            self.streak = 0
            self.fork()


def _stop_all(parts: list[_Part], grace_s: float) -> None:
    """SIGTERM every running part at once, SIGKILL what is left after grace_s."""
    running = {p.pid: p for p in parts if p.state == "running"}
    for pid in running:
        for signum in (signal.SIGTERM, signal.SIGCONT):  # a paused part takes it too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signum)
    deadline = time.monotonic() + grace_s
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            gone = running.pop(pid, None)
            if gone is not None:
                gone.state, gone.last_exit = "stopped", os.waitstatus_to_exitcode(status)
                gone.write()
            continue
        if time.monotonic() > deadline:
            for pid in running:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)


def supervise(parts: list[_Part], grace_s: float) -> None:
    """Watch the parts until SIGTERM (or SIGINT): see the module's text."""
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    by_pid = {p.pid: p for p in parts}
    while True:
        caught = signal.sigtimedwait(watched, POLL_S)
        if caught is not None and caught.si_signo != signal.SIGCHLD:
            _stop_all(parts, grace_s)
            return
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            part = by_pid.pop(pid, None)
            if part is not None:
                part.exited(os.waitstatus_to_exitcode(status))
        for part in parts:
            before = part.pid
            part.tend()
            if part.pid != before:
                by_pid[part.pid] = part


def _supervisor(launches: list[dict[str, Any]], grace_s: float) -> None:
    """In the supervisor: fork the parts, say their pids, then watch them."""
    code = 0
    try:
        _set_title(SUPERVISOR_TITLE)
        with contextlib.suppress(OSError):
            Path("/proc/self/comm").write_text("supervisor")
        parts = [_Part(launch) for launch in launches]
        for part in parts:
            # claim the part first (a supervisor that held it stopped lets it
            # go), then lift an old stop: this start is a start
            part.write()
            stopped_file(part.log).unlink(missing_ok=True)
            part.fork()
            print(json.dumps({"name": part.launch["name"], "pid": part.pid}), flush=True)
        os.setsid()  # its own group: a `down` finds it by the sandbox's marker
        print(json.dumps({"supervisor": os.getpid()}), flush=True)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)  # the runtime reads until this pipe closes
        os.close(null)
        supervise(parts, grace_s)
    except BaseException:
        traceback.print_exc()  # to the fork server's log
        code = 1
    finally:
        os._exit(code)


def main() -> int:
    # setproctitle may take the environment's memory for a long title; then
    # /proc/<pid>/environ would show the title and lose the sandbox's marker.
    # The titles fit in this process's command line.
    os.environ.setdefault("SPT_NOENV", "1")
    importlib.import_module("setproctitle")
    request = json.load(sys.stdin)
    launches: list[dict[str, Any]] = request["launches"]
    gc.disable()  # nothing collected (so nothing shared gets written) until the children run
    preload(sys.argv[1:] or [launch["app"] for launch in launches])
    gc.collect()
    gc.freeze()
    sys.stdout.flush()
    if os.fork() == 0:
        _supervisor(launches, float(request.get("grace_s", 10.0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
