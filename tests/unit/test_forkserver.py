"""The local runtime starts its parts from one fork server: each child is
its own process group with its own environment, log and process title,
ready as itself, found by the sandbox's marker, stopped alone, and its exit
code is known. A supervisor starts a part that exits again, as docker's
restart policy does, and leaves one stopped by hand down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from shopctl.errors import ShopError
from shopctl.runtimes import processes
from shopctl.stack import StackPart, uvicorn_args
from tests.conftest import free_port

APP = "tests.forked_app:create_app"


def launch(name: str, marker: str, app: str = APP, **env: str) -> processes.Launch:
    port = free_port()
    return processes.Launch(
        name,
        app,
        port,
        uvicorn_args(StackPart(name, app, port), "127.0.0.1", port),
        {"SHOP_SERVICE_NAME": name, processes.MARKER_VARIABLE: marker, **env},
    )


def whoami(part: processes.RunningPart) -> dict[str, object]:
    with urllib.request.urlopen(f"{part.url}/readyz", timeout=5) as answer:
        found: dict[str, object] = json.loads(answer.read())
        return found


@pytest.fixture
def started():
    parts: list[processes.RunningPart] = []
    yield parts
    for supervisor in {part.supervisor for part in parts}:  # it stops its parts
        if supervisor is not None:
            processes.stop_supervisor(supervisor, grace_s=10)
    for part in parts:
        processes.stop_process(part, grace_s=2)


def pgrep(pattern: str, parts: list[processes.RunningPart]) -> set[int]:
    """pgrep -f among the processes of these parts' supervisor (other
    sandboxes may run on this machine)."""
    supervisor = str(parts[0].supervisor)
    found = subprocess.run(
        ["pgrep", "-P", supervisor, "-f", pattern], capture_output=True, text=True
    )
    return {int(pid) for pid in found.stdout.split()}


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def test_forked_parts_are_each_themselves(tmp_path: Path, started):
    marker = f"{tmp_path}/sandbox"
    parts = processes.start_forked(
        [
            launch("catalog", marker, FORKED_APP_OWN="c"),
            launch("order", marker, FORKED_APP_OWN="o"),
        ],
        tmp_path,
    )
    started.extend(parts)
    processes.wait_ready(parts, deadline_s=30)
    catalog, order = (whoami(part) for part in parts)
    assert catalog["pid"] == parts[0].process.pid and order["pid"] == parts[1].process.pid
    assert catalog["pgid"] == catalog["pid"] and order["pgid"] == order["pid"]  # own groups
    assert (catalog["own"], order["own"]) == ("c", "o")
    assert catalog["instance"] != order["instance"]
    assert Path(f"/proc/{catalog['pid']}/comm").read_text().strip() == "catalog"
    # each has its own title: pgrep -f for one part finds that part alone
    assert pgrep(r"shop catalog \[local\]", parts) == {parts[0].process.pid}
    assert pgrep(r"shop order \[local\] tests\.forked_app", parts) == {parts[1].process.pid}
    title = Path(f"/proc/{parts[0].supervisor}/cmdline").read_text().rstrip("\0")
    assert title == "shop supervisor [local]"
    assert parts[0].supervisor == parts[1].supervisor
    # `down` finds them by the sandbox's marker even without a state file
    # (the titles did not take the environment's memory)
    assert processes.marked_processes(marker) == {
        parts[0].process.pid: "catalog",
        parts[1].process.pid: "order",
        parts[0].supervisor: "supervisor",
    }
    # one stops alone, gracefully (ended by its SIGTERM, read from its file)
    processes.stop_process(parts[1], grace_s=10)
    assert parts[1].process.poll() == -signal.SIGTERM
    assert "Application shutdown complete" in parts[1].log_path.read_text()
    assert parts[0].process.poll() is None and whoami(parts[0])["service"] == "catalog"
    assert "Started server process" in parts[0].log_path.read_text()
    # stopped by hand, it stays down (the supervisor said so, and did nothing)
    assert processes.supervised(parts[1].log_path)["state"] == "stopped"
    time.sleep(0.5)  # a restart, were one coming, takes 0.1 s: give it time to show
    assert not pgrep(r"shop order \[local\]", parts)


def test_a_part_that_dies_is_started_again_and_counted(tmp_path: Path, started):
    marker = f"{tmp_path}/sandbox"
    parts = processes.start_forked(
        [launch("payment", marker), launch("shipping", marker)], tmp_path
    )
    started.extend(parts)
    processes.wait_ready(parts, deadline_s=30)
    payment = parts[0]
    first = payment.process.pid
    os.killpg(first, signal.SIGKILL)
    status = wait_for(
        lambda: (s := processes.supervised(payment.log_path)) and s["pid"] != first and s
    )
    assert status["restarts"] == 1 and status["state"] == "running"
    assert status["last_exit"] == -signal.SIGKILL
    again = processes.RunningPart(
        "payment",
        payment.port,
        processes.ForkedProcess(status["pid"], Path("-")),
        payment.log_path,
        payment.instance,
        "payment",
    )
    processes.wait_ready([again], deadline_s=30)  # back, ready as itself
    assert whoami(again)["pid"] == status["pid"] and pgrep(r"shop payment \[local\]", parts) == {
        status["pid"]
    }
    assert whoami(parts[1])["pid"] == parts[1].process.pid  # the other part untouched
    # a stop by hand and a start: no restart counted, a new process
    processes.stop_supervised(payment.log_path, status["pid"], grace_s=5)
    assert processes.supervised(payment.log_path)["state"] == "stopped"
    pid = processes.start_supervised(payment.log_path)
    assert pid not in (None, status["pid"])
    assert processes.supervised(payment.log_path)["restarts"] == 1
    # stopping the supervisor stops every part it runs
    supervisor = payment.supervisor
    processes.stop_pid(supervisor, grace_s=15)
    assert not pgrep(r"shop (payment|shipping) \[local\]", parts)


def test_a_forked_part_that_cannot_start_says_so_with_its_code(tmp_path: Path, started):
    marker = f"{tmp_path}/sandbox"
    parts = processes.start_forked(
        [
            launch("cart", marker, FORKED_APP_FAILS="payment"),
            launch("payment", marker, FORKED_APP_FAILS="payment"),
        ],
        tmp_path,
        truncate=True,
    )
    started.extend(parts)
    with pytest.raises(ShopError) as caught:
        processes.wait_ready(parts, deadline_s=30)
    assert caught.value.message == "payment exited with code 1 while starting"
    assert "this part was told to fail" in parts[1].log_path.read_text()


def test_an_app_that_does_not_import_fails_in_its_own_log(tmp_path: Path, started):
    marker = f"{tmp_path}/sandbox"
    broken = launch("shipping", marker, app="tests.no_such_module:create_app")
    parts = processes.start_forked([launch("cart", marker), broken], tmp_path)
    started.extend(parts)
    with pytest.raises(ShopError, match="shipping exited with code 3 while starting"):
        processes.wait_ready(parts, deadline_s=30)
    assert "tests.no_such_module" in parts[1].log_path.read_text()
    processes.wait_ready([parts[0]], deadline_s=30)  # the other part is not taken down with it
    assert whoami(parts[0])["service"] == "cart"


def test_a_fork_server_that_hangs_is_stopped_with_one_sentence(tmp_path: Path, monkeypatch):
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text("import time\ntime.sleep(60)\n")  # hangs at start
    monkeypatch.setenv("PYTHONPATH", str(plant))
    started = time.monotonic()
    with pytest.raises(ShopError) as caught:
        processes.start_forked([launch("cart", f"{tmp_path}/sandbox")], tmp_path, timeout_s=1)
    assert caught.value.message == "the fork server did not start cart within 1 s"
    assert time.monotonic() - started < 10
    assert processes.marked_processes(f"{tmp_path}/sandbox") == {}  # nothing left running


def test_a_part_started_anew_is_let_go_by_the_supervisor_that_held_it_stopped(
    tmp_path: Path, started
):
    """`stop payment`, then `up`: a new fork server starts payment. The old
    supervisor must not start it as well (two on one port), and the new one
    restarts it when it dies."""
    payment = launch("payment", f"{tmp_path}/sandbox")
    [first] = processes.start_forked([payment], tmp_path)
    started.append(first)
    processes.wait_ready([first], deadline_s=30)
    processes.stop_process(first, grace_s=5)  # held stopped by the first supervisor
    [second] = processes.start_forked([payment], tmp_path)
    started.append(second)
    assert second.supervisor != first.supervisor
    processes.wait_ready([second], deadline_s=30)
    time.sleep(1)  # the first supervisor looks every 0.25 s: give it time to act, wrongly
    assert pgrep(r"shop payment \[local\]", [first]) == set()  # it let the part go
    os.killpg(second.process.pid, signal.SIGKILL)
    status = wait_for(
        lambda: (
            (s := processes.supervised(second.log_path))
            and s["pid"] != second.process.pid
            and s["state"] == "running"
            and s
        )
    )
    assert status["supervisor"] == second.supervisor and status["restarts"] == 1
    assert pgrep(r"shop payment \[local\]", [first]) == set()
