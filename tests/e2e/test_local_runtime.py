"""`shopctl up/status/logs/down --runtime local` from a shell, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from shopctl.runtimes import processes
from shopctl.runtimes.prometheus import binary as prometheus_binary
from shopctl.stack import PARTS
from tests.conftest import RUN_ID
from tests.e2e.conftest import (
    Shopper,
    free_port,
    login,
    new_product,
    new_shopper,
    wait_for_stock,
)

pytestmark = pytest.mark.e2e


# A test's shopctl never sees the machine's own sandbox: a stack of the
# default project left on the machine (docker volumes of "shop", a local
# state folder) would otherwise be the "current" runtime of every command
# that names no project and state folder of its own.
ISOLATED = {
    "SHOP_PROJECT": f"shoptest-{RUN_ID}-cli",
    "SHOP_STATE_DIR": str(Path(tempfile.gettempdir()) / f"shoptest-{RUN_ID}-state"),
}


def shopctl(
    env: dict[str, str], *args: str, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shopctl.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **ISOLATED, **env, "COLUMNS": "200"},
        cwd=cwd,
    )


def database_sessions(env: dict[str, str]) -> str:
    """PostgreSQL's view of this sandbox's sessions, for a failure message."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, application_name, state, wait_event_type, wait_event, "
            "left(query, 80) FROM pg_stat_activity WHERE datname LIKE %s",
            (env["SHOP_DATABASE_PREFIX"] + "%",),
        ).fetchall()
    return "\nsessions:\n" + "\n".join(map(str, rows))


def pids(env: dict[str, str]) -> dict[str, int]:
    """Each part's pid now: its supervisor's word (a restart changes it)."""
    state = json.loads((Path(env["SHOP_STATE_DIR"]) / "local" / "state.json").read_text())
    return {
        name: int((processes.supervised(Path(entry["log"])) or entry)["pid"])
        for name, entry in state["parts"].items()
    }


def shopctl_rows(env: dict[str, str]) -> dict[str, str]:
    """`shopctl status`, a row a part, keyed by the part's name."""
    status = shopctl(env, "status")
    assert status.returncode == 0, status.stderr
    rows = [line.strip("│ ") for line in status.stdout.splitlines() if " local " in line]
    return {row.split()[0]: " ".join(row.replace("│", " ").split()) for row in rows}


def wait_for_status(env: dict[str, str], condition, timeout: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        rows = shopctl_rows(env)
        if condition(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_up_checkout_status_logs_down(sandbox_env):
    env = sandbox_env
    up = shopctl(env, "up", "--runtime", "local")
    assert up.returncode == 0, up.stdout + up.stderr + database_sessions(env)
    assert "stack ready in" in up.stdout and "local runtime" in up.stdout
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    assert gateway in up.stdout
    assert "admin login: admin@shop.local / local-runtime-test" in up.stdout
    started = pids(env)
    assert set(started) == {p.name for p in PARTS}

    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", "local-runtime-test"), "admin")
        shopper = new_shopper(client)
        order_id = shopper.checkout(shopper.cart_with(new_product(admin, stock=2), 1))
        assert shopper.wait_terminal(order_id, timeout=30)["status"] == "COMPLETED"

    again = shopctl(env, "up", "--runtime", "local")
    assert again.returncode == 0 and "already running" in again.stdout
    assert pids(env) == started  # nothing restarted

    status = shopctl(env, "status")
    assert status.returncode == 0
    rows = [line for line in status.stdout.splitlines() if " local " in line]
    assert len(rows) == len(PARTS) and all("running" in r and "ready" in r for r in rows)

    # a part killed by hand comes back by itself, counted, as docker's restart policy does
    supervisor = json.loads((Path(env["SHOP_STATE_DIR"]) / "local" / "state.json").read_text())[
        "supervisors"
    ][0]
    # each part has its own title: pgrep -f for one finds it alone (this
    # sandbox's, -P: other sandboxes may run on this machine)
    found = subprocess.run(
        ["pgrep", "-P", str(supervisor), "-f", "services.payment"], capture_output=True, text=True
    )
    assert [int(pid) for pid in found.stdout.split()] == [started["payment"]]
    killed_at = time.monotonic()
    subprocess.run(["pkill", "-KILL", "-P", str(supervisor), "-f", "services.payment"], check=True)
    back = wait_for_status(env, lambda rows: rows["payment"].split()[2:4] == ["running", "ready"])
    took = time.monotonic() - killed_at
    assert took < 15, f"payment back and ready after {took:.1f} s"
    assert back["payment"].split()[-1] == "1", back["payment"]  # its restart, counted
    assert pids(env)["payment"] != started["payment"]
    others = {name: row for name, row in back.items() if name != "payment"}
    assert all(row.split()[2:4] == ["running", "ready"] for row in others.values()), others
    assert all(row.split()[-1] == "0" for row in others.values())
    # stopped by hand, it stays stopped
    assert shopctl(env, "stop", "payment").returncode == 0
    time.sleep(1)  # a restart would come within 0.1 s: give it time to show
    assert shopctl_rows(env)["payment"].split()[2] == "stopped"
    assert shopctl(env, "start", "payment").returncode == 0
    assert shopctl_rows(env)["payment"].split()[2:4] == ["running", "ready"]
    started = pids(env)

    logs = shopctl(env, "logs", "gateway", "order")
    assert logs.returncode == 0
    assert any(
        " gateway " in line and "Application startup complete" in line
        for line in logs.stdout.splitlines()
    )
    assert shopctl(env, "logs", "nosuch").returncode == 2

    down = shopctl(env, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not any(processes.pid_alive(pid) for pid in started.values())
    for part in PARTS:
        port = int(env[f"SHOP_{part.name.upper()}_PORT"])
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"{part.name} still listens"
    assert "nothing was running" in shopctl(env, "down").stdout

    # --volumes drops the data: the databases, and the stack's queues and exchanges
    vhost = env["SHOP_BROKER_URL"].rsplit("/", 1)[1]
    listed = ["rabbitmqctl", "-q", "-p", vhost]
    queues = subprocess.run([*listed, "list_queues", "name"], capture_output=True, text=True)
    assert "order.cart.checked_out.dlq" in queues.stdout.split()  # kept by a plain down
    dropped = shopctl(env, "down", "--volumes")
    assert dropped.returncode == 0 and "queues and the exchanges" in dropped.stdout
    queues = subprocess.run([*listed, "list_queues", "name"], capture_output=True, text=True)
    exchanges = subprocess.run([*listed, "list_exchanges", "name"], capture_output=True, text=True)
    assert queues.returncode == 0 and set(queues.stdout.split()) <= {"name"}, queues.stdout
    assert not [e for e in exchanges.stdout.split() if e.startswith("shop.")], exchanges.stdout


def test_a_taken_port_is_one_sentence_and_exit_1(sandbox_env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(sandbox_env["SHOP_GATEWAY_PORT"])))
        squatter.listen()
        result = shopctl(sandbox_env, "up", "--runtime", "local")
    assert result.returncode == 1
    port = sandbox_env["SHOP_GATEWAY_PORT"]
    assert (
        f"error: port {port} for gateway is already in use; pick another with "
        "SHOP_GATEWAY_PORT=<port>" in " ".join(result.stderr.split())
    )
    assert "Traceback" not in result.stderr
    state = Path(sandbox_env["SHOP_STATE_DIR"]) / "local" / "state.json"
    assert not state.exists()  # nothing was started


def test_a_stopped_postgresql_is_one_sentence_and_exit_1(sandbox_env):
    dead = {
        **sandbox_env,
        "SHOP_PG_ADMIN_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
    }
    started = time.monotonic()
    result = shopctl(dead, "up", "--runtime", "local")
    assert result.returncode == 1
    assert result.stderr.startswith("error: PostgreSQL cannot be reached at 127.0.0.1:")
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_a_part_that_cannot_start_stops_up_with_its_last_log_lines(sandbox_env):
    broken = {
        **sandbox_env,
        "SHOP_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
        "SHOP_BROKER_STARTUP_TIMEOUT_S": "0",
    }
    result = shopctl(broken, "up", "--runtime", "local")
    assert result.returncode == 1
    assert "exited with code" in result.stderr and "while starting" in result.stderr
    assert "hint: its last log lines:" in result.stderr
    failed = re.search(r"error: (\w+) exited with code", result.stderr)
    assert failed, result.stderr
    assert f"{failed.group(1)} cannot start:" in " ".join(result.stderr.split())
    down = shopctl(broken, "down")
    assert down.returncode == 0


def test_two_parts_on_one_port_are_refused_before_anything_starts(sandbox_env):
    env = {**sandbox_env, "SHOP_CART_PORT": sandbox_env["SHOP_CATALOG_PORT"]}
    result = shopctl(env, "up", "--runtime", "local")
    assert result.returncode == 1
    port = env["SHOP_CATALOG_PORT"]
    assert (
        f"error: catalog and cart are both given port {port}; give each part its own "
        "(SHOP_CART_PORT=<port>)" in " ".join(result.stderr.split())
    )
    assert not (Path(env["SHOP_STATE_DIR"]) / "local" / "state.json").exists()


def silent_broker() -> socket.socket:
    """A TCP listener that accepts and never answers: the broker that took the
    connection but will not read it (RabbitMQ with its file handles used up)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(64)
    return listener


def test_a_part_that_hangs_is_named_with_its_stacks_and_last_log_lines(sandbox_env):
    with silent_broker() as broker:
        host, port = broker.getsockname()
        env = {
            **sandbox_env,
            "SHOP_BROKER_URL": f"amqp://guest:guest@{host}:{port}/",
            "SHOP_READY_TIMEOUT_S": "6",
            "SHOP_BROKER_HANDSHAKE_TIMEOUT_S": "60",
        }
        started = time.monotonic()
        result = shopctl(env, "up", "--runtime", "local")
        elapsed = time.monotonic() - started
        shopctl(env, "down")
    assert result.returncode == 1
    text = " ".join(result.stderr.split())
    assert "did not become ready within 6 s" in text
    assert "last log lines of catalog:" in text
    # the watchdog's dump: the threads (faulthandler) and the awaiting task
    assert "stacks of catalog (pid" in text
    assert "Current thread" in result.stderr or "Thread 0x" in result.stderr
    assert "asyncio tasks (SIGUSR1):" in result.stderr
    assert "in connect" in result.stderr  # Broker.connect, waiting on the handshake
    assert elapsed < 40


def test_two_ups_at_once_start_one_stack_and_down_finds_every_process(sandbox_env):
    # with Prometheus beside the stack, as a newcomer's: down finds it too
    env = {k: v for k, v in sandbox_env.items() if k != "SHOP_PROMETHEUS"}
    command = [sys.executable, "-c", "from shopctl.cli import main; main()", "up", "-r", "local"]
    both = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env, "COLUMNS": "200"},
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert any("waiting for shopctl up (pid" in err for _, err in outputs), outputs
    assert any("already running" in out for out, _ in outputs), outputs
    marker = str((Path(env["SHOP_STATE_DIR"]) / "local").resolve())
    running = processes.marked_processes(marker)
    # one each, not two, and one supervisor (and one Prometheus, where installed)
    beside = ["prometheus"] if prometheus_binary() is not None else []
    assert sorted(running.values()) == sorted([*(p.name for p in PARTS), "supervisor", *beside])

    # the state file lost: down still finds them by their mark
    (Path(env["SHOP_STATE_DIR"]) / "local" / "state.json").unlink()
    down = shopctl(env, "down")
    assert down.returncode == 0, down.stderr
    assert "not in the state file" in down.stdout
    assert processes.marked_processes(marker) == {}
    assert not any(processes.pid_alive(pid) for pid in running)


def test_pause_resume_stop_start_one_part(sandbox_env):
    """A paused part holds the saga where it is; resumed, the saga goes on.
    A stopped part says so in status and starts again when asked."""
    env = sandbox_env
    assert shopctl(env, "up", "--runtime", "local").returncode == 0

    def status_of(name: str) -> str:
        rows = shopctl(env, "status").stdout.splitlines()
        return next(line for line in rows if f"│ {name} " in line)

    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", "local-runtime-test"), "admin")
        shopper = new_shopper(client)
        sku = new_product(admin, stock=2)
        paused = shopctl(env, "pause", "inventory")
        assert paused.returncode == 0 and "inventory paused" in paused.stdout
        assert "paused" in status_of("inventory")
        order_id = shopper.checkout(shopper.cart_with(sku, 1))
        time.sleep(2)
        assert shopper.get(f"/api/orders/{order_id}").json()["status"] == "PENDING"
        assert shopctl(env, "resume", "inventory").returncode == 0
        assert shopper.wait_terminal(order_id, timeout=30)["status"] == "COMPLETED"

        stopped = shopctl(env, "stop", "payment")
        assert stopped.returncode == 0 and "payment stopped" in stopped.stdout
        assert "stopped" in status_of("payment")
        assert not processes.pid_alive(pids(env)["payment"])
        started = shopctl(env, "start", "payment")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "running" in status_of("payment") and "ready" in status_of("payment")
        order_id = shopper.checkout(shopper.cart_with(sku, 1))
        assert shopper.wait_terminal(order_id, timeout=30)["status"] == "COMPLETED"

    wrong = shopctl(env, "pause", "broker")
    assert wrong.returncode == 2 and "the broker can be restarted, not paused" in wrong.stderr
    assert shopctl(env, "stop", "nosuch").returncode == 2


def test_replicas_compete_on_the_same_queues(sandbox_env):
    """`up --replicas payment=2`: a second payment process, ready and shown
    by status. A payment process is killed mid-message (a crash fault after
    its commit, before its ack): the message goes to the other, whose inbox
    knows it; every order completes, each paid once, the stock taken once.
    down stops the replica too. (One service's replicas: beside the
    session's stack in CI, this machine's PostgreSQL has connections for
    eight processes of a sandbox; the docker runtime's test runs inventory's.
    Which process takes a message is the broker's round robin, not asserted.)"""
    env = sandbox_env
    up = shopctl(env, "up", "--runtime", "local", "--replicas", "payment=2")
    assert up.returncode == 0, up.stdout + up.stderr
    status = shopctl(env, "status").stdout.splitlines()
    rows = [line for line in status if "│ payment" in line]
    assert len(rows) == 2 and all("running" in r and "ready" in r for r in rows), rows
    started = pids(env)
    assert "payment-2" in started
    crash = shopctl(
        env, "fault", "set", "payment", "StockReserved", "crash", "--at", "after_commit",
        "--times", "1",
    )  # fmt: skip
    assert crash.returncode == 0, crash.stdout + crash.stderr
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", "local-runtime-test"), "admin")
        shopper = new_shopper(client)
        sku = new_product(admin, stock=10)
        orders = [shopper.checkout(shopper.cart_with(sku, 1)) for _ in range(6)]
        finals = [shopper.wait_terminal(o, timeout=60)["status"] for o in orders]
        assert finals == ["COMPLETED"] * 6
        wait_for_stock(client, sku, {"sku": sku, "available": 4, "reserved": 0})
    restarted = [line for line in shopctl(env, "status").stdout.splitlines() if "│ payment" in line]
    # the crashed process was started again, and counted
    restarts = [int(line.strip("│ ").split("│")[-1].strip() or 0) for line in restarted]
    assert sum(restarts) >= 1, restarted
    ids = [uuid.UUID(o) for o in orders]
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:5432/{env['SHOP_DATABASE_PREFIX']}_payment"
    ) as connection:
        paid = connection.execute(
            "SELECT count(*), count(DISTINCT order_id) FILTER (WHERE status = 'CAPTURED') "
            "FROM payments WHERE order_id = ANY(%s)",
            (ids,),
        ).fetchone()
    assert paid == (6, 6)
    assert shopctl(env, "down").returncode == 0
    assert not any(processes.pid_alive(pid) for pid in started.values())
    bad = shopctl(env, "up", "--runtime", "local", "--replicas", "gateway=2")
    assert bad.returncode == 2 and "bad replicas entry" in bad.stderr
