"""What the gateway adds to a request: the same read through the gateway and
straight to the catalog, interleaved so both see the same machine noise.

Starts its own stack (local processes, databases shopbench_*, RabbitMQ
virtual host shopbench), so it never touches a running sandbox:

    python bench/gateway_overhead.py [--requests 2000] [--concurrency 16]

Prints what it measured and on what machine."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shopctl.runtimes.local import LocalStack, LocalStackConfig
from shopctl.stack import PARTS

VHOST = "shopbench"
ADMIN = ("admin@shop.local", "bench-admin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def sequential(gateway: str, catalog: str, sku: str, n: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"gateway": [], "direct": []}
    with httpx.Client(base_url=gateway) as via, httpx.Client(base_url=catalog) as direct:
        for client, path in ((via, f"/api/products/{sku}"), (direct, f"/products/{sku}")):
            for _ in range(50):  # warm the connection pools and caches
                client.get(path).raise_for_status()
        for i in range(n):
            order = [
                ("gateway", via, f"/api/products/{sku}"),
                ("direct", direct, f"/products/{sku}"),
            ]
            if i % 2:
                order.reverse()
            for name, client, path in order:
                started = time.perf_counter()
                client.get(path).raise_for_status()
                timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def throughput(base: str, path: str, workers: int, seconds: float) -> float:
    counts = [0] * workers
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        with httpx.Client(base_url=base) as client:
            while time.monotonic() < stop:
                client.get(path).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True, timeout=60)
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    log_dir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    stack = LocalStack(
        LocalStackConfig(
            pg_admin_url=args.pg_admin_url,
            broker_url=f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
            ports={p.name: free_port() for p in PARTS},
            log_dir=log_dir,
            database_prefix="shopbench",
            extra_env={"SHOP_ADMIN_EMAIL": ADMIN[0], "SHOP_ADMIN_PASSWORD": ADMIN[1]},
        )
    )
    try:
        stack.drop_databases()
        stack.create_databases()
        stack.start()
        stack.wait_ready(120)
        gateway, catalog = stack.url("gateway"), stack.url("catalog")
        token = httpx.post(
            f"{gateway}/api/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]}
        ).json()["access_token"]
        sku = "BENCH-1"
        httpx.post(
            f"{gateway}/api/products",
            headers={"Authorization": f"Bearer {token}"},
            json={"sku": sku, "name": "bench", "price_cents": 100, "currency": "EUR"},
        ).raise_for_status()

        timings = sequential(gateway, catalog, sku, args.requests)
        rates = {
            "gateway": throughput(gateway, f"/api/products/{sku}", args.concurrency, args.seconds),
            "direct": throughput(catalog, f"/products/{sku}", args.concurrency, args.seconds),
        }
    finally:
        stack.stop()
        stack.drop_databases()
        shutil.rmtree(log_dir, ignore_errors=True)
        subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True, timeout=60)

    print(f"gateway overhead, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, on {machine()}")
    print("GET /api/products/{sku} via the gateway vs GET /products/{sku} on the catalog,")
    print(f"{args.requests} sequential requests each, interleaved, one keep-alive client each:")
    print(f"{'':10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, values in timings.items():
        print(
            f"{name:10}{percentile(values, 50):9.2f}{percentile(values, 95):9.2f}"
            f"{percentile(values, 99):9.2f}{statistics.fmean(values):9.2f}"
        )
    added = statistics.median(timings["gateway"]) - statistics.median(timings["direct"])
    print(f"added by the gateway at the median: {added:.2f} ms")
    print(f"throughput with {args.concurrency} concurrent clients for {args.seconds:.0f} s each:")
    for name, rate in rates.items():
        print(f"{name:10}{rate:9.0f} requests/s")


if __name__ == "__main__":
    main()
