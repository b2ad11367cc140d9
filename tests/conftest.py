"""Fixtures against the real PostgreSQL and RabbitMQ on this machine.

Every test run gets its own RabbitMQ virtual host and its own databases
(``shoptest_<run>_*``), so runs never see each other's data or a running
sandbox's. Connection targets can be moved with SHOP_TEST_PG_ADMIN_URL and
SHOP_TEST_AMQP_HOST."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import psycopg
import pytest

from services.common import migrations
from services.common.settings import ServiceSettings

PG_ADMIN_URL = os.environ.get(
    "SHOP_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_HOST = os.environ.get("SHOP_TEST_AMQP_HOST", "127.0.0.1:5672")
RUN_ID = uuid.uuid4().hex[:8]
FIXTURE_MIGRATIONS = Path(__file__).parent / "fixture_migrations"


def rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def own_vhost(name: str) -> Iterator[str]:
    """A RabbitMQ virtual host for the duration of the block."""
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield name
    finally:
        with contextlib.suppress(RuntimeError):
            rabbitmqctl("delete_vhost", name)


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never handed out before in this run,
    and below the kernel's ephemeral range (so no outgoing connection takes
    it as its source port before the part binds it)."""
    low, high = _ephemeral_range()
    candidates = [p for p in range(20000, low) if p not in _GIVEN_PORTS] or [
        p for p in range(high + 1, 65536) if p not in _GIVEN_PORTS
    ]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    raise RuntimeError("no free port left for the tests")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def amqp_url(vhost: str) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}/{vhost}"


@pytest.fixture(scope="session")
def vhost() -> Iterator[str]:
    with own_vhost(f"shoptest_{RUN_ID}") as name:
        yield name


@pytest.fixture(scope="session")
def broker_url(vhost: str) -> str:
    return amqp_url(vhost)


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A migrated database that per-test databases are copied from."""
    name = f"shoptest_{RUN_ID}_tpl"
    _admin(f'CREATE DATABASE "{name}"')
    migrations.upgrade(_pg_url(name), FIXTURE_MIGRATIONS)
    yield name
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(template_database: str) -> Iterator[str]:
    name = f"shoptest_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield _pg_url(name)
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, broker_url: str) -> ServiceSettings:
    """Settings of a fresh service (unique queue names) with fast timings."""
    return ServiceSettings(
        service_name=f"svc{uuid.uuid4().hex[:6]}",
        database_url=database_url,
        broker_url=broker_url,
        max_attempts=3,
        retry_base_delay_ms=150,
        outbox_lease_s=1.0,
        outbox_poll_interval_s=0.5,
        outbox_failure_backoff_s=0.2,
        reconnect_interval_s=0.5,
        # at most 3 + 3 (+ 1 LISTEN): the connection budget above counts on it
        db_pool_size=3,
        db_max_overflow=3,
        publish_timeout_s=3.0,
        shutdown_grace_s=3.0,
    )


async def eventually(
    check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail
    at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


class Probe:
    """A test's own queue on the events exchange, collecting what arrives."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, queue: aio_pika.abc.AbstractQueue):
        self.channel = channel
        self.queue = queue
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def start(self) -> None:
        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self.messages.append(message)
            await message.ack()

        await self.queue.consume(collect)

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Any]:
        await eventually(lambda: len(self.messages) >= count, timeout)
        return self.messages

    def ids(self) -> list[str | None]:
        return [m.message_id for m in self.messages]


@pytest.fixture
async def amqp(broker_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(broker_url, reconnect_interval=0.5)
    yield connection
    await connection.close()


@pytest.fixture
async def probe_factory(
    amqp: aio_pika.abc.AbstractRobustConnection, settings: ServiceSettings
) -> Callable[..., Awaitable[Probe]]:
    async def make(*routing_keys: str) -> Probe:
        channel = await amqp.channel()
        exchange = await channel.declare_exchange(
            settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in routing_keys:
            await queue.bind(exchange, key)
        probe = Probe(channel, queue)
        await probe.start()
        return probe

    return make


async def drop_stream(broker: Any, broadcaster: Any) -> None:
    """Stop a test's ``SagaBroadcaster``, then delete its stream and close
    its broker. The stop comes first: a stream deleted under its reader is
    declared again by aio-pika's channel recovery, bound to every event."""
    await broadcaster.stop()
    channel = await broker.channel(prefetch=1)
    await channel.queue_delete(broadcaster.queue_name)
    await channel.close()
    await broker.close()


# Fixtures that start a stack of the machine's servers: with `-n 2 --dist
# loadgroup` (scripts/test) the tests on the session's stack are one group,
# and the tests that start a sandbox of their own (or, as the integration
# tests do, services with pools of their own) two more, so both workers
# have a share of the sandboxes (one group was the run's long pole, 480 s
# on one worker against 320 on the other). PostgreSQL's default 100
# connections (97 past the superuser's) hold the worst case by construction:
# the session's stack (8 processes x 5, kept while its worker lives) and a
# test of each sandbox group at once (7 x 4 each, SHOP_DB_CEILING below;
# an integration test's service at most 3 + 3 + 1): 40 + 28 + 28 = 96 (case L1).
# More sandbox groups change nothing of that: two workers run two tests at once.
SANDBOX_FIXTURES = {"sandbox_env", "tui_env"}
# sandbox tests of the second group: long ones, so the two groups even out
SECOND_SANDBOX_GROUP = {
    "test_fuzz.py",
    "test_bench.py",
    "test_observability.py",
    "test_orchestration.py",
}
# the local runtime's own tests: a group of their own (about 170 s of the
# first group's 370, which was the run's long pole)
THIRD_SANDBOX_GROUP = {"test_local_runtime.py"}
# the shipped scenarios, in both saga modes: a group of their own (about 80 s)
SCENARIO_SUITE = "test_every_shipped_scenario_passes_and_junit_says_so"


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that stop the broker run last, so nothing else sees the outage
    (scripts/test runs them on their own, after the rest). With xdist, the
    tests on the session's stack are one group, and the sandboxes' and the
    integration tests another."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("restarts_servers") is not None,
            # the scenario suite's group first: alone at the end it was the
            # run's long pole, its worker busy 100 s while the other idled
            getattr(item, "originalname", "") != SCENARIO_SUITE,
            "/e2e/" in str(item.path),
        )
    )
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if getattr(item, "originalname", "") == SCENARIO_SUITE:
            item.add_marker(pytest.mark.xdist_group("scenario-suite"))
        elif fixtures & SANDBOX_FIXTURES and item.path.name in SECOND_SANDBOX_GROUP:
            item.add_marker(pytest.mark.xdist_group("own-servers-2"))
        elif fixtures & SANDBOX_FIXTURES and item.path.name in THIRD_SANDBOX_GROUP:
            item.add_marker(pytest.mark.xdist_group("own-servers-3"))
        elif fixtures & SANDBOX_FIXTURES or "/integration/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("own-servers"))
        elif "stack" in fixtures:
            item.add_marker(pytest.mark.xdist_group("session-stack"))
