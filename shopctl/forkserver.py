"""Start several parts from one process that has imported them once.

Each service imports for most of a CPU-second (FastAPI, SQLAlchemy,
alembic, aio-pika) and holds the same libraries in memory. The local
runtime starts one of these instead: it imports every app asked for, then
forks one child per part. The children share the imported pages with each
other (copy on write; ``gc.freeze`` keeps the collector from touching them)
and start serving at once. This process exits when it has forked them all.

Run as ``python -m shopctl.forkserver <app> [<app> ...]`` (the apps also
name the children's command line, which the runtime checks before it
signals a pid) with the launches as JSON on stdin::

    {"launches": [{"name", "app", "uvicorn", "env", "log", "truncate"}]}

It prints one line ``{"name": ..., "pid": ...}`` a child. A child runs
uvicorn's command line with the launch's ``uvicorn`` arguments (those of
``shopctl.stack.uvicorn_args``, as the docker runtime's command), in its
own session (its process group is the part), its output appended to its
log, its environment replaced by the launch's. When it ends it writes its exit code
to ``<log>.exit`` (minus the signal's number when a signal ended it, as
Popen says): the runtime reads it there (a forked child is not its child
to wait for). An app that fails to import here is imported again by
its child, which then fails the way a lone process would, in its own log.

Importing the apps and uvicorn starts no thread, no event loop and no
connection: there is none in this process when it forks.
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
import traceback
from pathlib import Path
from typing import Any


def exit_file(log: str | Path) -> Path:
    """Where a forked part writes its exit code."""
    return Path(f"{log}.exit")


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
    with contextlib.suppress(OSError):  # what ps and top show
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


def main() -> int:
    launches: list[dict[str, Any]] = json.load(sys.stdin)["launches"]
    gc.disable()  # nothing collected (so nothing shared gets written) until the children run
    preload(sys.argv[1:] or [launch["app"] for launch in launches])
    gc.collect()
    gc.freeze()
    for launch in launches:
        exit_file(launch["log"]).unlink(missing_ok=True)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(launch)
        print(json.dumps({"name": launch["name"], "pid": pid}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
