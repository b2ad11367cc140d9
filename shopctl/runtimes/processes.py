"""Parts of the stack as child processes: start, wait until ready, stop."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopctl.errors import ShopError
from shopctl.runtimes.forkserver import SUPERVISOR_TITLE, exit_file, status_file, stopped_file


class ForkedProcess:
    """A part forked by ``shopctl.runtimes.forkserver``: not this process's child, so
    it is watched by pid, and its exit code is read from the file it writes
    when it ends (the parts of Popen that the runtime uses)."""

    def __init__(self, pid: int, exit_path: Path) -> None:
        self.pid = pid
        self.exit_path = exit_path
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not pid_alive(self.pid):
            try:
                self.returncode = int(self.exit_path.read_text())
            except (OSError, ValueError):
                self.returncode = -signal.SIGKILL  # ended without a word: killed
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode


@dataclass
class RunningPart:
    name: str
    port: int
    process: subprocess.Popen[bytes] | ForkedProcess
    log_path: Path
    instance: str = ""  # the SHOP_INSTANCE_ID it was started with
    service: str = ""  # the service it runs (a replica "inventory-2" runs inventory)
    supervisor: int | None = None  # the pid of the fork server's supervisor, if forked

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

    def stack_dump(self, wait_s: float = 2.0) -> str:
        """Ask the process for its thread and task stacks (SIGUSR1, see
        services.common.diagnostics) and return what it wrote to its log."""
        try:
            before = self.log_path.stat().st_size
            os.kill(self.process.pid, signal.SIGUSR1)
        except OSError:
            return ""
        deadline = time.monotonic() + wait_s
        size, last_change = before, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.log_path.stat().st_size
            if now != size:
                size, last_change = now, time.monotonic()
            elif size > before and time.monotonic() - last_change > 0.3:
                break  # written and quiet
        with self.log_path.open("rb") as log:
            log.seek(before)
            return log.read().decode(errors="replace").strip()


MARKER_VARIABLE = "SHOP_SANDBOX"


def marked_processes(marker: str) -> dict[int, str]:
    """pid -> part name of every live process whose environment carries
    SHOP_SANDBOX=<marker> (process-group leaders only: stop_pid takes the group)."""
    if not marker:
        return {}
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if needle not in environ or os.getpgid(pid) != pid or not pid_alive(pid):
                continue
        except OSError:
            continue
        name = next(
            (v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"SHOP_SERVICE_NAME=")),
            None,
        )
        if name is None:  # forked from the fork server: its name is its comm
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                name = "?"
        found[pid] = name
    return found


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Launch:
    """One part to start: its name, the app it serves and how."""

    name: str
    app: str  # "module:factory"
    port: int
    uvicorn: list[str]  # uvicorn's arguments (shopctl.stack.uvicorn_args)
    env: dict[str, str]
    service: str = ""  # the service it runs (a replica "inventory-2" runs inventory)


def start_forked(
    launches: list[Launch],
    log_dir: Path,
    *,
    truncate: bool = False,
    timeout_s: float = 120.0,
    grace_s: float = 10.0,
) -> list[RunningPart]:
    """Start the parts from one process that imports their apps once and
    forks each under a supervisor that restarts a part that exits (see
    shopctl.runtimes.forkserver); each gets a fresh SHOP_INSTANCE_ID and logs to
    ``<log_dir>/<name>.log``. Returns when all are forked."""
    if not launches:
        return []
    log_dir.mkdir(parents=True, exist_ok=True)
    instances = {launch.name: new_instance_id() for launch in launches}
    envs = [
        {**os.environ, **launch.env, "SHOP_INSTANCE_ID": instances[launch.name]}
        for launch in launches
    ]
    # the server's own environment: what every part shares (SHOP_SANDBOX
    # among it), which is what /proc/<pid>/environ shows for each child
    shared = dict(set.intersection(*(set(env.items()) for env in envs)))
    request = {
        "launches": [
            {
                "name": launch.name,
                "app": launch.app,
                "uvicorn": launch.uvicorn,
                "env": env,
                "log": str(log_dir / f"{launch.name}.log"),
                "truncate": truncate,
            }
            for launch, env in zip(launches, envs, strict=True)
        ],
        "grace_s": grace_s,
    }
    apps = list(dict.fromkeys(launch.app for launch in launches))
    with (log_dir / "forkserver.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "shopctl.runtimes.forkserver", *apps],
            env=shared,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    try:
        out, _ = server.communicate(json.dumps(request).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_pid(server.pid, grace_s=2)  # it and any part it forked (not yet in their own session)
        server.wait()
        raise ShopError(
            f"the fork server did not start {', '.join(launch.name for launch in launches)} "
            f"within {timeout_s:g} s",
            hint=f"its log: {log_dir / 'forkserver.log'}",
        ) from None
    pids, supervisor = {}, None
    for line in out.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            answer = json.loads(line)
            if "supervisor" in answer:
                supervisor = int(answer["supervisor"])
            else:
                pids[str(answer["name"])] = int(answer["pid"])
    missing = [launch.name for launch in launches if launch.name not in pids]
    if missing:
        raise ShopError(
            f"could not start {', '.join(missing)}: "
            f"the fork server exited with code {server.returncode}",
            hint=f"its log: {log_dir / 'forkserver.log'}",
        )
    return [
        RunningPart(
            launch.name,
            launch.port,
            ForkedProcess(pids[launch.name], exit_file(log_dir / f"{launch.name}.log")),
            log_dir / f"{launch.name}.log",
            instances[launch.name],
            launch.service or launch.name,
            supervisor,
        )
        for launch in launches
    ]


def start_process(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    log_dir: Path,
    *,
    truncate: bool = False,
    service: str = "",
) -> RunningPart:
    """Start one part in its own session, its output to ``<log_dir>/<name>.log``.
    It gets a fresh SHOP_INSTANCE_ID, which its /readyz must answer with."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    instance = new_instance_id()
    with log_path.open("wb" if truncate else "ab") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env, "SHOP_INSTANCE_ID": instance},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signals only, not the terminal's
        )
    return RunningPart(name, port, process, log_path, instance, service or name)


def is_ready(part: RunningPart, timeout: float = 2.0) -> bool:
    """Ready, and it is this part's process that says so."""
    answer = probe(part.url, timeout)
    if answer is None or not answer.ready:
        return False
    if answer.service != part.service or answer.instance != part.instance:
        raise ShopError(
            f"port {part.port} of {part.name} is answered by another process "
            f"({answer.service or 'unknown'}, pid {answer.pid})",
            hint="two parts on one port? pick distinct ports (SHOP_<PART>_PORT)",
        )
    return True


def wait_ready(
    parts: list[RunningPart],
    deadline_s: float,
    on_ready: Callable[[RunningPart], None] | None = None,
) -> None:
    """Wait until every part answers /readyz with 200 as itself; raise
    ShopError naming the first that died or did not make it, with its last
    log lines and, for one that hangs, its thread and task stacks. A part
    that exits after it was seen ready fails the wait too."""
    deadline = time.monotonic() + deadline_s
    pending = list(parts)
    while True:
        for part in parts:
            if part.process.poll() is not None:
                when = "while starting" if part in pending else "after it was ready"
                raise ShopError(
                    f"{part.name} exited with code {part.process.returncode} {when}",
                    hint=f"its last log lines:\n{part.log_tail()}",
                )
        if not pending:
            return
        for part in list(pending):
            if is_ready(part):
                pending.remove(part)
                if on_ready is not None:
                    on_ready(part)
        if pending and time.monotonic() > deadline:
            raise not_ready_error(pending, deadline_s)
        if pending:
            time.sleep(0.1)


def not_ready_error(pending: list[RunningPart], deadline_s: float) -> ShopError:
    """The parts that missed the deadline, with the first one's stacks and
    last log lines (the watchdog's report)."""
    names = ", ".join(p.name for p in pending)
    first = pending[0]
    stacks = first.stack_dump()
    detail = f"last log lines of {first.name}:\n{first.log_tail()}"
    if stacks:
        detail += f"\n\nstacks of {first.name} (pid {first.process.pid}):\n{stacks}"
    return ShopError(f"{names} did not become ready within {deadline_s:.0f} s", hint=detail)


def stop_process(part: RunningPart, grace_s: float = 10.0) -> None:
    """SIGTERM (graceful: in-flight handlers finish), then SIGKILL. A forked
    part is marked stopped first, so its supervisor leaves it down."""
    if isinstance(part.process, ForkedProcess):
        stop_supervised(part.log_path, part.process.pid, grace_s)
        return
    if part.process.poll() is not None:
        return
    stop_pid(part.process.pid, grace_s)
    part.process.wait(timeout=5)  # reap it


def supervised(log_path: Path) -> dict[str, Any] | None:
    """What the supervisor last wrote of a forked part (pid, state, restarts,
    started_at, last_exit, supervisor), or None."""
    try:
        found = json.loads(status_file(log_path).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def supervisor_runs(pid: int) -> bool:
    """Whether ``pid`` is a live supervisor of forked parts (not a recycled pid)."""
    return pid_runs(pid, SUPERVISOR_TITLE)


def supervisor_alive(status: dict[str, Any] | None) -> bool:
    return status is not None and supervisor_runs(int(status["supervisor"]))


def stop_supervisor(pid: int, grace_s: float = 20.0) -> None:
    """Stop a supervisor, which stops every part it runs, all at once."""
    if supervisor_runs(pid):
        stop_pid(pid, grace_s)


def stop_supervised(log_path: Path, pid: int, grace_s: float = 10.0) -> None:
    """Stop a forked part by hand: mark it stopped (its supervisor will not
    start it again), stop its process, and wait until the supervisor saw it."""
    stopped_file(log_path).touch()
    status = supervised(log_path)
    current = int(status["pid"]) if status else pid
    if pid_alive(current):
        stop_pid(current, grace_s)
    deadline = time.monotonic() + 5
    while supervisor_alive(status) and time.monotonic() < deadline:
        status = supervised(log_path)
        if status is None or status["state"] == "stopped":
            return
        time.sleep(0.02)


def start_supervised(log_path: Path, timeout_s: float = 10.0) -> int | None:
    """Lift a forked part's stop: its supervisor forks it again. Returns the
    new pid, or None when no supervisor is alive to do it."""
    status = supervised(log_path)
    if not supervisor_alive(status):
        return None
    assert status is not None
    before = int(status["pid"])
    stopped_file(log_path).unlink(missing_ok=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = supervised(log_path)
        if status is not None and status["state"] == "running" and status["pid"] != before:
            return int(status["pid"])
        time.sleep(0.02)
    raise ShopError(f"the supervisor did not start {log_path.stem} again within {timeout_s:g} s")


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
        os.killpg(pid, signal.SIGCONT)  # a paused part takes its SIGTERM too
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


def pid_paused(pid: int) -> bool:
    """True when the process is stopped by a signal (SIGSTOP: paused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "T"


def signal_group(pid: int, signum: int) -> None:
    """``signum`` to the process group of ``pid`` (a part and its children)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


@dataclass(frozen=True)
class ReadyAnswer:
    ready: bool
    service: str
    instance: str
    pid: int | None


def probe(url: str, timeout: float = 1.0) -> ReadyAnswer | None:
    """What ``url``/readyz says, or None when nothing answers it."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ReadyAnswer(
        status == 200 and body.get("status") == "ready",
        str(body.get("service", "")),
        str(body.get("instance", "")),
        body.get("pid") if isinstance(body.get("pid"), int) else None,
    )


def url_ready(url: str, service: str, instance: str | None = None, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers ready as ``service`` (and that instance)."""
    answer = probe(url, timeout)
    return (
        answer is not None
        and answer.ready
        and answer.service == service
        and (instance is None or answer.instance == instance)
    )
