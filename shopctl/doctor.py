"""What the sandbox needs on this machine, and how to get what is missing."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_checks(
    postgres: tuple[str, int] = ("127.0.0.1", 5432),
    rabbitmq: tuple[str, int] = ("127.0.0.1", 5672),
) -> list[Check]:
    """Look at the machine; never changes anything."""
    version = sys.version_info
    checks = [
        Check(
            "Python",
            version >= (3, 11),
            f"{version.major}.{version.minor}.{version.micro}",
            "install Python 3.11 or newer",
        ),
        Check(
            "PostgreSQL",
            _reachable(*postgres),
            f"{postgres[0]}:{postgres[1]}",
            "start it: pg_ctlcluster <version> main start (Debian: apt-get install postgresql)",
        ),
        Check(
            "RabbitMQ",
            _reachable(*rabbitmq),
            f"{rabbitmq[0]}:{rabbitmq[1]}",
            "start it: rabbitmq-server -detached (Debian: apt-get install rabbitmq-server)",
        ),
    ]
    return checks
