"""The gateway outside sandbox mode, as it would run where others reach it
(RELIABILITY.md A2, A4, A6): it refuses to start on the sandbox's secrets,
two processes share one login throttle on Redis, an unknown email costs as
long as a wrong password, and /metrics is not on the public port."""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RUN_ID, _admin, _pg_url, amqp_url, free_port, own_vhost

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("SHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reason() -> str | None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        return f"no Redis on 127.0.0.1:6379 ({exc}); scripts/test starts the machine's"
    return None


def gateway_env(database: str, vhost: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SHOP_SERVICE_NAME": "gateway",
        "SHOP_DATABASE_URL": _pg_url(database),
        "SHOP_BROKER_URL": amqp_url(vhost),
        "SHOP_FAULT_INJECTION": "false",  # production mode
        **extra,
    }


def start_gateway(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:create_app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((process.stdout.read() if process.stdout else b"").decode())
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout} s")


@pytest.fixture(scope="module")
def production() -> Iterator[dict[str, object]]:
    """Two gateway processes in production mode on one database, one broker
    virtual host and one Redis, each with its internal port."""
    reason = redis_reason()
    if reason:
        pytest.skip(reason)
    database = f"shoptest_{RUN_ID}_prodgw"
    _admin(f'CREATE DATABASE "{database}"')
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with own_vhost(f"shoptest_{RUN_ID}_prodgw") as vhost:
            common = {
                "SHOP_JWT_SECRET": secrets.token_urlsafe(48),
                "SHOP_ADMIN_PASSWORD": secrets.token_urlsafe(18),
                "SHOP_REDIS_URL": REDIS_URL,
                "SHOP_LOGIN_THROTTLE_NAMESPACE": f"shoptest-{RUN_ID}",
                # 20 failures an address (100 by default): the spray below stays short
                "SHOP_LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE": "20",
                "SHOP_DB_POOL_SIZE": "2",
                "SHOP_DB_MAX_OVERFLOW": "1",
            }
            gateways = []
            for _ in range(2):
                port, internal = free_port(), free_port()
                env = gateway_env(database, vhost, **common, SHOP_INTERNAL_PORT=str(internal))
                processes.append(start_gateway(env, port))
                gateways.append((f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}"))
            for (url, _), process in zip(gateways, processes, strict=True):
                wait_ready(url, process)
            yield {"gateways": gateways, "database": database, "vhost": vhost}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_outside_sandbox_mode_the_gateway_refuses_the_sandbox_secret(production):
    """Started with no SHOP_JWT_SECRET, it exits at once with one sentence."""
    env = gateway_env(str(production["database"]), str(production["vhost"]))
    env.pop("SHOP_JWT_SECRET", None)
    refused = start_gateway(env, free_port())
    out, _ = refused.communicate(timeout=60)
    assert refused.returncode != 0
    text = out.decode()
    assert "gateway not started: SHOP_JWT_SECRET is not set: outside sandbox mode" in text, text
    assert "Traceback" not in text


def test_two_gateways_share_one_throttle_and_an_email_spray_does_not_reset_it(production):
    """Failures on either process count together (Redis); the sixth answers
    429 on both, and a spray of failures for invented emails (what emptied
    the old throttle's memory) leaves the account's count as it was."""
    (first, _), (second, _) = production["gateways"]
    email = f"victim-{RUN_ID}@example.com"
    body = {"email": email, "password": "the real password"}
    assert httpx.post(f"{first}/api/auth/register", json=body, timeout=30).status_code == 201
    wrong = {"email": email, "password": "a guess"}
    statuses = [
        httpx.post(f"{url}/api/auth/token", json=wrong, timeout=30).status_code
        for url in (first, second, first, second, first)
    ]
    assert statuses == [401] * 5
    for url in (first, second):
        sixth = httpx.post(f"{url}/api/auth/token", json=wrong, timeout=30)
        assert sixth.status_code == 429 and int(sixth.headers["Retry-After"]) > 0
    # invented emails from one address of their own (uvicorn trusts the
    # X-Forwarded-For of a proxy on 127.0.0.1), until the address is capped
    with httpx.Client(timeout=30, headers={"X-Forwarded-For": "10.9.9.9"}) as client:
        sprayed = [
            client.post(
                f"{second}/api/auth/token",
                json={"email": f"nobody-{n}-{RUN_ID}@example.com", "password": "x"},
            ).status_code
            for n in range(25)
        ]
    assert sprayed.count(401) == 20 and sprayed[-1] == 429  # 20 a minute, an address here
    assert httpx.post(f"{first}/api/auth/token", json=wrong, timeout=30).status_code == 429


def test_an_unknown_email_answers_as_slowly_as_a_wrong_password(production):
    """Median of 30 each, interleaved: within 20 % (argon2 on a dummy hash
    for an email nobody registered). Each attempt from an address of its
    own, so no throttle answers in their place."""
    (url, _), _ = production["gateways"]
    with httpx.Client(base_url=url, timeout=30) as client:
        emails = [f"known-{n}-{RUN_ID}@example.com" for n in range(30)]
        for email in emails:
            registered = client.post(
                "/api/auth/register", json={"email": email, "password": "the real password"}
            )
            assert registered.status_code == 201
        known, unknown = [], []
        for n, email in enumerate(emails):
            for bucket, who in ((known, email), (unknown, f"ghost-{n}-{RUN_ID}@example.com")):
                started = time.perf_counter()
                answer = client.post(
                    "/api/auth/token",
                    json={"email": who, "password": "not it"},
                    headers={"X-Forwarded-For": f"10.0.{n}.1"},
                )
                bucket.append(time.perf_counter() - started)
                assert answer.status_code in (401, 429), answer.text
    ratio = statistics.median(unknown) / statistics.median(known)
    print(
        f"median unknown {statistics.median(unknown) * 1000:.1f} ms, "
        f"known {statistics.median(known) * 1000:.1f} ms, ratio {ratio:.2f}"
    )
    assert 0.8 <= ratio <= 1.2


def test_metrics_and_inflight_are_on_the_internal_port_only(production):
    (url, internal), _ = production["gateways"]
    assert httpx.get(f"{url}/metrics", timeout=10).status_code == 404
    assert httpx.get(f"{url}/inflight", timeout=10).status_code == 404
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    metrics = httpx.get(f"{internal}/metrics", timeout=10)
    assert metrics.status_code == 200 and "shop_gateway_open_streams" in metrics.text
    assert httpx.get(f"{internal}/inflight", timeout=10).json()["service"] == "gateway"


def test_the_security_cases_that_need_no_service_behind_hold_in_production_mode(production):
    """RELIABILITY.md A2, A5, A6 and A7 against a gateway outside sandbox
    mode (the e2e suite's other security tests run on the sandbox)."""
    import asyncio

    import jwt

    from services.common.faults import FaultCommand, FaultSpec
    from shopctl.errors import ShopError
    from shopctl.fault_switch import send

    (url, _), _ = production["gateways"]
    with httpx.Client(base_url=url, timeout=30) as client:
        # A2: a token signed with the sandbox's published secret is refused
        from services.gateway.auth import key_id
        from services.gateway.settings import SANDBOX_JWT_SECRET

        now = int(time.time())
        sandbox_token = jwt.encode(
            {"sub": "1" * 32, "role": "admin", "iss": "shop", "aud": "shop-api"}
            | {"iat": now, "exp": now + 60},
            SANDBOX_JWT_SECRET,
            algorithm="HS256",
            headers={"kid": key_id(SANDBOX_JWT_SECRET)},
        )
        refused = client.get("/api/orders", headers={"Authorization": f"Bearer {sandbox_token}"})
        assert refused.status_code == 401
        # the admin's default password is no login
        default = client.post(
            "/api/auth/token", json={"email": "admin@shop.local", "password": "admin"}
        )
        assert default.status_code == 401
        # A5: a customer's token on an admin route
        email = f"a5-{RUN_ID}@example.com"
        client.post("/api/auth/register", json={"email": email, "password": "long enough"})
        token = client.post("/api/auth/token", json={"email": email, "password": "long enough"})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        product = {"sku": "X-1", "name": "x", "price_cents": 1, "currency": "EUR"}
        assert client.post("/api/products", json=product, headers=headers).status_code == 403
        # A7: one error shape, no stack trace
        broken = client.post(
            "/api/auth/token", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 422
        body = broken.json()
        assert set(body) == {"error"} and "Traceback" not in broken.text
    # A6: no process takes a fault switch outside sandbox mode
    switch = FaultCommand(action="set", fault=FaultSpec(part="gateway", event="x", kind="fail"))
    with pytest.raises(ShopError, match="no gateway process listens for faults"):
        asyncio.run(send(amqp_url(str(production["vhost"])), "gateway", switch))
