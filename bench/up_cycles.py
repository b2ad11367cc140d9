"""L3: `shopctl up --runtime local` many times in a row, as CI starts it (no
terminal, standard input closed): each cycle is up, one checkout followed to
COMPLETED, down --volumes (fresh databases, so migrations run every time).
Prints each cycle and the count of stalls (an up that failed or a checkout
that did not complete); exits 1 when there was any.

    python bench/up_cycles.py --cycles 50
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

PARTS = ("catalog", "cart", "order", "inventory", "payment", "shipping", "gateway")
ADDRESS = {"name": "A", "line1": "1 Road", "city": "Town", "postal_code": "1", "country": "GB"}


def distinct_free_ports(count: int) -> list[int]:
    """Ports below the kernel's ephemeral range, each held until all are chosen."""
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", random.randint(20000, 32000)))
            except OSError:
                probe.close()
                continue
            held.append(probe)
        return [s.getsockname()[1] for s in held]
    finally:
        for probe in held:
            probe.close()


def shopctl(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from shopctl.cli import main; main()", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env, "COLUMNS": "200"},
    )


def checkout(gateway: str, admin_password: str) -> str:
    """One order through the gateway; its final status."""
    with httpx.Client(base_url=gateway, timeout=15) as client:
        admin = client.post(
            "/api/auth/token", json={"email": "admin@shop.local", "password": admin_password}
        ).json()["access_token"]
        sku = f"CYC-{uuid.uuid4().hex[:8]}"
        product = {"sku": sku, "name": "cycle", "description": "", "price_cents": 100}
        client.post(
            "/api/products",
            json={**product, "currency": "EUR", "initial_stock": 5},
            headers={"Authorization": f"Bearer {admin}"},
        ).raise_for_status()
        email = f"cycle-{uuid.uuid4().hex[:8]}@example.com"
        client.post(
            "/api/auth/register", json={"email": email, "password": "cycle-pass"}
        ).raise_for_status()
        token = client.post(
            "/api/auth/token", json={"email": email, "password": "cycle-pass"}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 15
        while client.get(f"/api/inventory/{sku}").status_code != 200:
            if time.monotonic() > deadline:
                return "stock never appeared"
            time.sleep(0.05)
        cart = client.post("/api/carts", headers=auth).json()["id"]
        client.post(
            f"/api/carts/{cart}/items", json={"sku": sku, "quantity": 1}, headers=auth
        ).raise_for_status()
        order = client.post(
            f"/api/carts/{cart}/checkout",
            json={"payment": {"card_token": "tok_visa"}, "shipping_address": ADDRESS},
            headers=auth,
        ).json()["order_id"]
        deadline = time.monotonic() + 30
        status = "PENDING"
        while time.monotonic() < deadline:
            answer = client.get(f"/api/orders/{order}", headers=auth)
            if answer.status_code == 200:
                status = answer.json()["status"]
                if status in ("COMPLETED", "CANCELLED"):
                    break
            time.sleep(0.1)
        return str(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument(
        "--vhost",
        default="shop-cycles",
        help="the broker's virtual host, made if missing (another sandbox on the same one "
        "would compete for its queues)",
    )
    args = parser.parse_args()
    ports = distinct_free_ports(len(PARTS))
    state = Path(tempfile.mkdtemp(prefix="shop-cycles-"))
    vhost = args.vhost if args.vhost == "/" else args.vhost.strip("/")
    if vhost != "/":
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True, check=False)
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=True,
        )
    env = {
        "SHOP_STATE_DIR": str(state),
        "SHOP_DATABASE_PREFIX": "shopcycles",
        "SHOP_ADMIN_PASSWORD": "cycles-admin",
        "SHOP_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{'' if vhost == '/' else vhost}",
        "SHOP_READY_TIMEOUT_S": "60",
        **{f"SHOP_{name.upper()}_PORT": str(port) for name, port in zip(PARTS, ports, strict=True)},
    }
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    stalls, times = 0, []
    print(f"{args.cycles} cycles of up, checkout, down --volumes; state in {state}")
    for cycle in range(1, args.cycles + 1):
        started = time.monotonic()
        up = shopctl(env, "up", "--runtime", "local")
        up_s = time.monotonic() - started
        if up.returncode != 0:
            stalls += 1
            print(f"cycle {cycle}: STALL, up exited {up.returncode}\n{up.stderr[-3000:]}")
        else:
            try:
                status = checkout(gateway, env["SHOP_ADMIN_PASSWORD"])
            except httpx.HTTPError as exc:
                status = f"checkout failed: {exc}"
            if status != "COMPLETED":
                stalls += 1
            times.append(up_s)
            print(f"cycle {cycle}: up {up_s:.1f} s, order {status}", flush=True)
        down = shopctl(env, "down", "--volumes")
        if down.returncode != 0:
            print(f"cycle {cycle}: down failed: {down.stderr.strip()}")
    times.sort()
    median = times[len(times) // 2] if times else float("nan")
    print(f"stalls: {stalls} of {args.cycles} cycles; up median {median:.1f} s")
    return 1 if stalls else 0


if __name__ == "__main__":
    sys.exit(main())
