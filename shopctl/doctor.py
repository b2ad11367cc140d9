"""What the sandbox needs on this machine, and how to get what is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from shopctl.runtimes.base import port_is_free
from shopctl.settings import SandboxSettings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    optional: bool = False


# 41 quorum queues at about 2.7 handles each, plus a connection per part.
STACK_FILE_HANDLES = 130


def broker_file_handles() -> tuple[int, int] | None:
    """(used, limit) of the local RabbitMQ's file-handle budget, or None when
    rabbitmqctl cannot tell (not installed, another machine, no rights).
    When the budget is used up the broker accepts connections and never
    reads them: every new part then hangs in its handshake."""
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        return None
    try:
        answer = subprocess.run(
            [exe, "eval", "file_handle_cache:info()."],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = dict(re.findall(r"\{(total_limit|total_used),(\d+)\}", answer.stdout))
    if answer.returncode != 0 or len(found) != 2:
        return None
    return int(found["total_used"]), int(found["total_limit"])


def connection_budget_check(settings: SandboxSettings) -> Check:
    """What `up --runtime local` would give the stack of the server's connections."""
    from shopctl.errors import ShopError
    from shopctl.runtimes.budget import read_budget
    from shopctl.stack import PARTS

    try:
        budget = read_budget(settings.pg_admin_url, len(PARTS), settings.db_reserve)
    except ShopError as exc:
        return Check("connection budget", False, exc.message, exc.hint or "")
    return Check("connection budget", True, budget.describe())


def run_checks(settings: SandboxSettings) -> list[Check]:
    """Look at the machine; never changes anything."""
    import psycopg

    from shopctl.errors import ShopError
    from shopctl.runtimes.docker import docker_engine_error
    from shopctl.runtimes.local import check_broker

    version = sys.version_info
    checks = [
        Check(
            "Python",
            version >= (3, 11),
            f"{version.major}.{version.minor}.{version.micro}",
            "install Python 3.11 or newer",
        )
    ]
    pg = urlsplit(settings.pg_admin_url)
    try:
        psycopg.connect(settings.pg_admin_url, connect_timeout=3).close()
        checks.append(Check("PostgreSQL", True, f"{pg.hostname}:{pg.port or 5432}"))
        checks.append(connection_budget_check(settings))
    except psycopg.Error as exc:
        checks.append(
            Check(
                "PostgreSQL",
                False,
                f"{pg.hostname}:{pg.port or 5432}: {str(exc).strip().splitlines()[0]}",
                "start it: pg_ctlcluster <version> main start (Debian: apt-get install "
                "postgresql); or set SHOP_PG_ADMIN_URL",
            )
        )
    broker = urlsplit(settings.broker_url)
    try:
        check_broker(settings.broker_url)
        checks.append(Check("RabbitMQ", True, f"{broker.hostname}:{broker.port or 5672}"))
    except ShopError as exc:
        checks.append(
            Check(
                "RabbitMQ",
                False,
                exc.message,
                "start it: rabbitmq-server -detached (Debian: apt-get install rabbitmq-server)",
            )
        )
    handles = broker_file_handles()
    if handles is not None:
        used, limit = handles
        checks.append(
            Check(
                "RabbitMQ file handles",
                limit - used >= STACK_FILE_HANDLES,
                f"{used} of {limit} used; a stack needs about {STACK_FILE_HANDLES}",
                "raise its open-files limit: rabbitmqctl stop; ulimit -n 65536; "
                "rabbitmq-server -detached (or delete unused virtual hosts and queues)",
            )
        )
    from shopctl.runtimes import prometheus

    checks.append(
        Check(
            "Prometheus",
            prometheus.binary() is not None,
            prometheus.binary() or "not installed: the stack runs without it",
            "optional (metrics and alerts beside the local stack): apt-get install prometheus",
            optional=True,
        )
    )
    checks.append(
        Check(
            "RabbitMQ metrics",
            not port_is_free(prometheus.RABBITMQ_METRICS_PORT),
            f"rabbitmq_prometheus on :{prometheus.RABBITMQ_METRICS_PORT}"
            if not port_is_free(prometheus.RABBITMQ_METRICS_PORT)
            else "no rabbitmq_prometheus plugin: Prometheus sees no queues",
            "optional: rabbitmq-plugins enable rabbitmq_prometheus",
            optional=True,
        )
    )
    engine = docker_engine_error()
    checks.append(
        Check(
            "Docker engine",
            engine is None,
            "answers" if engine is None else engine,
            "optional (for --runtime docker): apt-get install docker.io, then start dockerd",
            optional=True,
        )
    )
    taken = [f"{name} {port}" for name, port in settings.ports().items() if not port_is_free(port)]
    checks.append(
        Check(
            "free ports",
            not taken,
            "all free" if not taken else "in use: " + ", ".join(taken),
            "stop what uses them (shopctl status?), or set SHOP_<PART>_PORT",
            optional=True,
        )
    )
    checks.append(Check("mode", True, settings.mode_notice(), optional=True))
    return checks
