"""C8: PostgreSQL restarts under a running service; the pool heals, the
relay's LISTEN connection comes back, nothing leaks. Restarts the machine's
PostgreSQL, so it runs with the other server-restarting tests, last."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from services.common.consumer import Subscription
from services.common.events import OrderCompleted
from tests.conftest import PG_ADMIN_URL, eventually
from tests.integration.test_broker_restart import all_handled_once, commit_orders
from tests.integration.test_consumer import Service, count_effect

pytestmark = pytest.mark.restarts_servers


def restart_postgresql() -> None:
    clusters = Path("/etc/postgresql")
    if not shutil.which("pg_ctlcluster") or not clusters.is_dir():
        pytest.skip("no Debian pg_ctlcluster here to restart PostgreSQL with")
    version = sorted(p.name for p in clusters.iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def connections_of(application: str) -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_service_recovers_after_postgresql_restart(settings):
    async with Service(settings, Subscription(OrderCompleted, count_effect)) as service:
        before = await commit_orders(service, 5)
        await eventually(lambda: all_handled_once(service, before))

        relay = service.runtime.relay
        await eventually(relay.listening.is_set)
        sessions = relay.listen_sessions
        await asyncio.to_thread(restart_postgresql)

        async def commits_again() -> bool:
            try:
                ids = await commit_orders(service, 1)
            except Exception:
                return False
            after.extend(ids)
            return True

        after: list[uuid.UUID] = []
        await eventually(commits_again, timeout=30, interval=0.2)
        after += await commit_orders(service, 4)
        await eventually(lambda: all_handled_once(service, before + after), timeout=30)
        await eventually(lambda: relay.listen_sessions > sessions, timeout=15)
        assert (await service.runtime.readiness())["database"] == "ok"
        # The pool replaced its dead connections instead of piling up new ones.
        pool_limit = settings.db_pool_size + settings.db_max_overflow + 1  # + LISTEN
        assert connections_of(settings.service_name) <= pool_limit
