"""The local runtime starts its parts from one fork server: each child is
its own process group with its own environment and log, ready as itself,
found by the sandbox's marker, stopped alone, and its exit code is known."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from shopctl import processes
from shopctl.errors import ShopError
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
    for part in parts:
        processes.stop_process(part, grace_s=2)


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
    assert os.getppid() != catalog["pid"]
    # `down` finds them by the sandbox's marker even without a state file
    assert processes.marked_processes(marker) == {
        parts[0].process.pid: "catalog",
        parts[1].process.pid: "order",
    }
    # one stops alone, gracefully (ended by its SIGTERM, read from its file)
    processes.stop_process(parts[1], grace_s=10)
    assert parts[1].process.poll() == -signal.SIGTERM
    assert "Application shutdown complete" in parts[1].log_path.read_text()
    assert parts[0].process.poll() is None and whoami(parts[0])["service"] == "catalog"
    assert "Started server process" in parts[0].log_path.read_text()


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
