"""`shopctl up/status/down --runtime docker` on a real engine, with the local
stand-in images (no registry here). Skips, saying why, without an engine."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from shopctl.runtimes.budget import DEFAULT_CEILING
from shopctl.runtimes.docker import PROJECT_LABEL, cli_json, docker_engine_error
from shopctl.settings import LOCAL_IMAGES, OFFICIAL_IMAGES
from tests.conftest import RUN_ID
from tests.e2e.conftest import (
    Shopper,
    free_port,
    login,
    new_product,
    new_shopper,
    stock_of,
    wait_for_stock,
)
from tests.e2e.test_local_runtime import shopctl

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _skip_reason() -> str | None:
    error = docker_engine_error()
    if error:
        return f"no Docker engine: {error} (scripts/docker-engine starts one)"
    import docker

    client = docker.from_env()
    missing = [image for image in LOCAL_IMAGES.values() if not client.images.list(name=image)]
    if missing and os.environ.get("SHOP_TEST_DOCKER_IMAGES", "local") == "local":
        return f"images {missing} not built (scripts/build-local-images builds them)"
    return None


def _official_images_here() -> bool:
    import docker

    client = docker.from_env()
    return all(client.images.list(name=image) for image in OFFICIAL_IMAGES.values())


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        print(f"\nSKIPPED docker runtime tests: {reason}")
        pytest.skip(reason)
    env = {
        "SHOP_STATE_DIR": str(tmp_path_factory.mktemp("docker-state")),
        "SHOP_PROJECT": f"shoptest-{RUN_ID}",
        "SHOP_IMAGES": os.environ.get("SHOP_TEST_DOCKER_IMAGES", "local"),
        "SHOP_GATEWAY_PORT": str(free_port()),
        "SHOP_RABBITMQ_MANAGEMENT_PORT": str(free_port()),
        "SHOP_RABBITMQ_PORT": str(free_port()),
        "SHOP_PROMETHEUS_PORT": str(free_port()),
        "SHOP_GRAFANA_PORT": str(free_port()),
        "SHOP_ADMIN_PASSWORD": "docker-runtime-test",
        "SHOP_READY_TIMEOUT_S": "300",
    }
    try:
        yield env
    finally:
        shopctl(env, "down", "--volumes", timeout=300)
        import docker

        with contextlib.suppress(Exception):  # the test's own app image tag
            # its layers kept (noprune): the next build of the same lock reuses them
            docker.from_env().images.remove(f"{env['SHOP_PROJECT']}-app:dev", noprune=True)


def _grafana_here() -> bool:
    import docker

    return bool(docker.from_env().images.list(name=OFFICIAL_IMAGES["grafana"]))


def wait_targets_up(prometheus: str, jobs: set[str], timeout: float = 30.0) -> list[dict]:
    """Prometheus' targets once every one of ``jobs`` has been scraped up."""
    deadline = time.monotonic() + timeout
    while True:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
        active = targets["activeTargets"]
        if {t["labels"]["job"] for t in active if t["health"] == "up"} >= jobs:
            return list(active)
        assert time.monotonic() < deadline, [(t["scrapeUrl"], t["lastError"]) for t in active]
        time.sleep(0.5)


def project_objects(project: str) -> dict[str, list[str]]:
    import docker

    client = docker.from_env()
    label = {"label": f"{PROJECT_LABEL}={project}"}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
    }


@pytest.mark.timeout(1500)  # a first build, the scenarios, a warm start
def test_docker_up_checkout_down(docker_env):
    env = docker_env
    up = shopctl(env, "up", "--runtime", "docker", timeout=1200)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "stack ready in" in up.stdout and "docker runtime" in up.stdout
    print(up.stdout.splitlines()[-4])  # the time to ready, for the record

    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", "docker-runtime-test"), "admin")
        shopper = new_shopper(client)
        order_id = shopper.checkout(shopper.cart_with(new_product(admin, stock=2), 1))
        assert shopper.wait_terminal(order_id, timeout=60)["status"] == "COMPLETED"
        # the frontend, built into the app image, served by the gateway at /
        page = client.get("/orders/any")
        assert page.status_code == 200 and '<div id="root">' in page.text

    # Prometheus as a container, scraping every part's container and the
    # broker's plugin; Grafana only where its image can be had (said if not)
    prometheus = f"http://127.0.0.1:{env['SHOP_PROMETHEUS_PORT']}"
    assert prometheus in up.stdout
    jobs = {"catalog", "cart", "order", "inventory", "payment", "shipping", "gateway", "rabbitmq"}
    targets = wait_targets_up(prometheus, jobs)
    assert len(targets) == len(jobs), targets
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {"ShopSagaOverdue", "ShopDeadLetters"}
    if not _grafana_here():
        said = " ".join(up.stdout.split())
        assert f"grafana left out: the image {OFFICIAL_IMAGES['grafana']} is not here" in said

    # the containers' spans, in the project's volume, read by `trace --spans`
    deadline = time.monotonic() + 10
    while True:  # the batch exporter writes half a second after a span ends
        spans = shopctl(env, "trace", "--spans", order_id, timeout=60)
        if spans.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert spans.returncode == 0, spans.stdout + spans.stderr
    head = " ".join(spans.stdout.splitlines()[0:2])
    assert "across cart, gateway, inventory, order, payment, shipping" in head, spans.stdout

    # the bench's table counts the containers' processes (not the machine's)
    ran = shopctl(
        env,
        "bench",
        *("--rate", "4", "--duration", "3", "--warmup", "0", "--customers", "2", "--skus", "1"),
        "--json",
        timeout=240,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    figures = json.loads(ran.stdout)
    assert figures["completed"] > 0
    parts = {"order", "inventory", "payment", "shipping", "cart", "gateway"}
    assert parts | {"rabbitmq", "postgresql"} <= set(figures["cpu_s"]), figures["cpu_s"]
    assert all(figures["cpu_s"][p] > 0 and figures["rss_mb"][p] > 0 for p in parts)

    # the app image: the services alone, on a read-only root, as its own user
    import docker

    app = docker.from_env().containers.get(f"{env['SHOP_PROJECT']}-gateway")
    assert app.attrs["HostConfig"]["ReadonlyRootfs"] is True and app.attrs["Config"]["User"]
    tools = ("pytest", "mypy", "ruff", "schemathesis", "shopctl", "tui", "textual", "pip")
    code, output = app.exec_run(
        [
            "python3",
            "-c",
            "import importlib.util, sys; "
            f"found = [m for m in {tools!r} if importlib.util.find_spec(m)]; "
            "print(found); sys.exit(bool(found))",
        ]
    )
    assert code == 0, output
    size = docker.from_env().images.get(f"{env['SHOP_PROJECT']}-app:dev").attrs["Size"]
    print(f"app image: {size / 1e6:.0f} MB")

    objects = project_objects(env["SHOP_PROJECT"])
    observers = 1 + _grafana_here()  # Prometheus, and Grafana where it can be had
    # broker, Redis, databases, services, observers
    assert len(objects["containers"]) == 1 + 1 + 7 + 7 + observers

    # the quorum queues' write-ahead log rolls over at 64 MB, not 512 MB
    # (RabbitMQ's memory stays bounded: docs/performance-journal.md)
    import docker

    broker = docker.from_env().containers.get(f"{env['SHOP_PROJECT']}-rabbitmq")
    code, output = broker.exec_run(
        ["rabbitmqctl", "eval", "application:get_env(ra, wal_max_size_bytes)."]
    )
    assert code == 0 and b"{ok,67108864}" in output, output
    # a database each, the broker's queues, the spans and Prometheus' data
    assert len(objects["volumes"]) == 7 + 1 + 2

    # shopctl reaches the stack's own broker (published on 127.0.0.1)
    dead = shopctl(env, "dlq", "list", timeout=60)
    assert dead.returncode == 0 and "0 dead letters" in dead.stdout, dead.stdout + dead.stderr

    # parts paused, stopped and started, and the broker restarted, as containers
    broken = shopctl(
        env,
        "scenario",
        "run",
        str(Path(__file__).parent / "scenario_files" / "pause-stop-start.yaml"),
        str(Path(__file__).parents[2] / "scenarios" / "broker-restart.yaml"),
        timeout=400,
    )
    assert broken.returncode == 0, broken.stdout[-4000:] + broken.stderr[-2000:]

    # competing consumers as containers: inventory-2 on inventory's queues,
    # its database made again for two processes' connections
    def max_connections() -> int:
        database = docker.from_env().containers.get(f"{env['SHOP_PROJECT']}-postgres-inventory")
        [setting] = [a for a in database.attrs["Config"]["Cmd"] if a.startswith("max_conn")]
        return int(setting.split("=")[1])

    one = max_connections()
    more = shopctl(env, "up", "--runtime", "docker", "--replicas", "inventory=2", timeout=300)
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    rows = [line for line in shopctl(env, "status").stdout.splitlines() if "│ inventory" in line]
    assert len(rows) == 2 and all("running" in r for r in rows), rows
    code, output = broker.exec_run(["rabbitmqctl", "list_queues", "-q", "name", "consumers"])
    consumers = dict(line.split() for line in output.decode().splitlines() if line.strip())
    assert consumers.get("inventory.order.created") == "2", output
    assert max_connections() == one + DEFAULT_CEILING  # a process's share more
    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = Shopper(client, login(client, "admin@shop.local", "docker-runtime-test"), "admin")
        shopper = new_shopper(client)
        sku = new_product(admin, stock=5)
        orders = [shopper.checkout(shopper.cart_with(sku, 1)) for _ in range(3)]
        assert all(shopper.wait_terminal(o, timeout=60)["status"] == "COMPLETED" for o in orders)
    fewer = shopctl(env, "up", "--runtime", "docker", "--replicas", "inventory=1", timeout=300)
    assert fewer.returncode == 0 and "removed inventory-2" in fewer.stdout, fewer.stdout

    again = shopctl(env, "up", "--runtime", "docker", timeout=300)
    assert again.returncode == 0 and "already running" in again.stdout

    status = shopctl(env, "status")
    assert status.returncode == 0 and status.stdout.count(" docker ") == 16 + observers

    # code changed since the image was built: `up` without --build runs the new
    # code (checked on the warm start below, which starts every container anew)
    probe = Path(__file__).parents[2] / "frontend" / "dist" / f"probe-{RUN_ID}.txt"
    try:
        down = shopctl(env, "down", timeout=300)
        assert down.returncode == 0
        left = project_objects(env["SHOP_PROJECT"])
        assert left["containers"] == [] and left["networks"] == []
        assert len(left["volumes"]) == 7 + 1 + 2  # data kept without --volumes

        # A warm start (images built, data kept); with the official images asked
        # for and not to be had, the stand-ins are used and that is said once.
        official = {k: v for k, v in env.items() if k != "SHOP_IMAGES"}
        probe.write_text(f"built from this checkout as it is now: {uuid.uuid4()}")
        warm = shopctl(official, "up", "--runtime", "docker", timeout=600)
        assert warm.returncode == 0, warm.stdout[-3000:] + warm.stderr[-3000:]
        print(warm.stdout.splitlines()[-4])  # the warm time to ready, for the record
        text = " ".join(warm.stdout.split())
        assert "the code changed since the last build: built the app image" in text, text
        served = httpx.get(f"{gateway}/{probe.name}", timeout=30)
        assert served.status_code == 200 and served.text == probe.read_text()
        unchanged = shopctl(official, "up", "--runtime", "docker", timeout=300)
        assert unchanged.returncode == 0 and "already running" in unchanged.stdout
        if not _official_images_here():
            text = " ".join(warm.stdout.split())
            assert text.count("using the local stand-in images") == 1
            assert "is not here and cannot be pulled" in text
        assert shopctl(env, "down", timeout=300).returncode == 0

        assert shopctl(env, "down", "--volumes", timeout=300).returncode == 0
        assert project_objects(env["SHOP_PROJECT"])["volumes"] == []
    finally:
        probe.unlink(missing_ok=True)


def _busiest_node(client, project: str, broker) -> str:
    """The node most of the stack's connections are on, by the address each
    connection reached ("client -> node:5672"), as its container's part."""
    code, output = broker.exec_run(
        ["rabbitmqctl", "list_connections", "-q", "name", "--formatter", "json"]
    )
    assert code == 0, output
    counts: dict[str, int] = {}
    for connection in cli_json(output):
        address = connection["name"].split(" -> ")[1].rsplit(":", 1)[0]
        counts[address] = counts.get(address, 0) + 1
    for node in ("rabbitmq", "rabbitmq-2", "rabbitmq-3"):
        networks = client.containers.get(f"{project}-{node}").attrs["NetworkSettings"]["Networks"]
        if max(counts, key=lambda a: counts[a]) in {n["IPAddress"] for n in networks.values()}:
            print(f"connections by node address: {counts}; {node} has the most")
            return node
    raise AssertionError(f"no node has the addresses {counts}")


def _running_nodes(broker) -> list[str]:
    code, output = broker.exec_run(["rabbitmqctl", "cluster_status", "--formatter", "json"])
    assert code == 0, output
    return sorted(cli_json(output)["running_nodes"])


@pytest.mark.docker_cluster
@pytest.mark.timeout(900)
def test_a_three_node_broker_loses_a_node_mid_saga(docker_env):
    """RabbitMQ as three containers of one cluster (`up --rabbitmq-nodes 3`),
    the services' queues quorum queues with a replica on each node. The node
    most services are connected to is killed while orders are under way:
    every order still completes, once (one payment, the stock taken once),
    and the node rejoins when it is started again."""
    import docker

    # the broker and the parts alone: Prometheus was the first test's
    env = {**docker_env, "SHOP_PROMETHEUS": "false"}
    up = shopctl(env, "up", "--runtime", "docker", "--rabbitmq-nodes", "3", timeout=900)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    print(up.stdout.splitlines()[-4])
    client = docker.from_env()
    project = env["SHOP_PROJECT"]
    first = client.containers.get(f"{project}-rabbitmq")
    nodes = ["rabbit@rabbitmq", "rabbit@rabbitmq-2", "rabbit@rabbitmq-3"]
    assert _running_nodes(first) == nodes
    code, output = first.exec_run(
        ["rabbitmq-queues", "quorum_status", "inventory.order.created", "--formatter", "json"]
    )
    assert code == 0, output
    members = sorted(m["Node Name"] for m in cli_json(output))
    assert members == nodes, output  # a replica on each node

    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    orders: list[str] = []
    with httpx.Client(base_url=gateway, timeout=30) as http:
        admin = Shopper(http, login(http, "admin@shop.local", "docker-runtime-test"), "admin")
        shopper = new_shopper(http)
        sku = new_product(admin, stock=100)
        before = stock_of(http, sku)
        carts = [shopper.cart_with(sku, 1) for _ in range(24)]
        orders += [shopper.checkout(cart) for cart in carts[:12]]
        victim = _busiest_node(client, project, first)
        container = client.containers.get(f"{project}-{victim}")
        container.kill()  # mid-saga: the first twelve are on their way
        killed_at = time.monotonic()
        survivor = client.containers.get(
            f"{project}-{'rabbitmq-2' if victim == 'rabbitmq' else 'rabbitmq'}"
        )
        orders += [shopper.checkout(cart) for cart in carts[12:]]
        finals = [shopper.wait_terminal(order, timeout=120) for order in orders]
        print(f"killed {victim}; the last order ended {time.monotonic() - killed_at:.1f} s later")
        assert [f["status"] for f in finals] == ["COMPLETED"] * len(orders), finals
        # the stock taken once an order, nothing left reserved
        taken = {**before, "available": before["available"] - len(orders), "reserved": 0}
        wait_for_stock(http, sku, taken, timeout=60)

    # once: one payment an order (its order_id is unique), captured, whatever
    # was delivered twice
    payments = client.containers.get(f"{project}-postgres-payment")
    ids = ",".join(f"'{order}'" for order in orders)
    code, output = payments.exec_run(
        [
            "psql", "-U", "postgres", "-d", "shop_payment", "-At", "-c",
            "SELECT count(*), count(*) FILTER (WHERE status = 'CAPTURED') FROM payments "
            f"WHERE order_id IN ({ids})",
        ]
    )  # fmt: skip
    assert code == 0, output
    assert output.decode().strip() == f"{len(orders)}|{len(orders)}", output

    assert len(_running_nodes(survivor)) == 2
    container.start()
    deadline = time.monotonic() + 120
    while len(_running_nodes(survivor)) < 3:
        assert time.monotonic() < deadline, "the node did not rejoin its cluster"
        time.sleep(1)
    assert shopctl(env, "down", "--volumes", timeout=300).returncode == 0
