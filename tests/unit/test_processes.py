"""How `up` judges readiness: it must know whom it asked, and a part that
dies after it answered still fails the wait. Real child processes serve a
/readyz of their own."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from shopctl.errors import ShopError
from shopctl.runtimes import processes
from tests.conftest import free_port

# A stand-in part: answers /readyz as SERVICE with its SHOP_INSTANCE_ID (or
# another's), optionally exiting EXIT_AFTER seconds after it started.
FAKE_PART = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    port, service, instance, exit_after = sys.argv[1:5]
    instance = instance or os.environ["SHOP_INSTANCE_ID"]

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "ready", "service": service,
                               "instance": instance, "pid": os.getpid()}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass

    if float(exit_after) > 0:
        threading.Timer(float(exit_after), lambda: os._exit(3)).start()
    HTTPServer(("127.0.0.1", int(port)), Ready).serve_forever()
    """
)


def fake_part(
    tmp_path: Path,
    name: str,
    *,
    answers_as: str | None = None,
    instance: str = "",
    exit_after: float = 0,
) -> processes.RunningPart:
    port = free_port()
    command = [
        sys.executable,
        "-c",
        FAKE_PART,
        str(port),
        answers_as or name,
        instance,
        str(exit_after),
    ]
    return processes.start_process(name, command, {}, port, tmp_path, service=name)


@pytest.fixture
def started(tmp_path: Path):
    parts: list[processes.RunningPart] = []
    yield parts
    for part in parts:
        processes.stop_process(part, grace_s=2)


def test_a_part_answering_as_itself_is_ready(tmp_path, started):
    part = fake_part(tmp_path, "catalog")
    started.append(part)
    processes.wait_ready([part], deadline_s=15)
    assert processes.url_ready(part.url, "catalog", part.instance)
    assert not processes.url_ready(part.url, "catalog", "some-other-instance")
    assert not processes.url_ready(part.url, "gateway")


def test_a_port_answered_by_another_part_fails_with_one_sentence(tmp_path, started):
    impostor = fake_part(tmp_path, "gateway", answers_as="catalog")
    started.append(impostor)
    with pytest.raises(ShopError) as caught:
        processes.wait_ready([impostor], deadline_s=15)
    assert caught.value.message.startswith(
        f"port {impostor.port} of gateway is answered by another process (catalog, pid "
    )


def test_an_older_instance_on_the_port_is_not_taken_for_the_new_one(tmp_path, started):
    stale = fake_part(tmp_path, "order", instance="an-older-start")
    started.append(stale)
    with pytest.raises(ShopError, match="answered by another process"):
        processes.wait_ready([stale], deadline_s=15)


def test_a_part_that_exits_after_it_was_ready_fails_the_wait(tmp_path, started):
    quick = fake_part(tmp_path, "cart", exit_after=1.0)
    slow = fake_part(tmp_path, "order")
    started.extend([quick, slow])
    # `slow` is ready too, but the wait goes on until `quick` has died: keep
    # `slow` from answering by asking for it under a port nobody serves.
    never = processes.RunningPart("payment", free_port(), slow.process, slow.log_path, "x")
    with pytest.raises(ShopError) as caught:
        processes.wait_ready([quick, never], deadline_s=20)
    assert caught.value.message == "cart exited with code 3 after it was ready"


def test_marked_processes_finds_only_its_own_sandbox(tmp_path, started):
    mine = fake_part(tmp_path, "catalog")
    started.append(mine)
    marker = f"{tmp_path}/sandbox"
    port = free_port()
    command = [sys.executable, "-c", FAKE_PART, str(port), "gateway", "", "0"]
    marked = processes.start_process(
        "gateway",
        command,
        {processes.MARKER_VARIABLE: marker, "SHOP_SERVICE_NAME": "gateway"},
        port,
        tmp_path,
    )
    started.append(marked)
    # Popen returns once the exec began; the new program's environment shows
    # in /proc only a moment later (it was read empty under load in CI)
    processes.wait_ready([marked], deadline_s=15)
    assert processes.marked_processes(marker) == {marked.process.pid: "gateway"}
    assert processes.marked_processes(marker + "-other") == {}
