"""What every runtime offers the CLI: the parts' states, the report of an
`up`, the protocol, and the port checks they share."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shopctl.errors import ShopError
from shopctl.runtimes.logs import LogLine

# part name, state ("waiting", "starting", "ready", "failed", "external"), detail
Progress = Callable[[str, str, str], None]


@dataclass(frozen=True)
class PartStatus:
    name: str
    runtime: str
    state: str  # running, stopped, exited
    health: str  # ready, not ready, -
    port: int | None
    started_at: float | None
    restarts: int = 0  # times it was started again after it exited by itself


@dataclass(frozen=True)
class UpReport:
    runtime: str
    already_running: bool
    elapsed_s: float
    urls: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # one line each, after the table


class Runtime(Protocol):
    name: str

    def infrastructure(self) -> list[str]:
        """Names of the non-service parts this runtime shows (broker, databases)."""
        ...

    def up(self, progress: Progress, build: bool = False) -> UpReport: ...

    def down(self, volumes: bool = False) -> list[str]: ...

    def status(self) -> list[PartStatus]: ...

    def restart(self, part: str, progress: Progress) -> None: ...

    def stop_part(self, part: str, progress: Progress) -> None: ...

    def start_part(self, part: str, progress: Progress) -> None:
        """Start a stopped part and wait until it is ready."""
        ...

    def pause_part(self, part: str) -> None:
        """Freeze a part: its connections stay open, it answers nothing."""
        ...

    def resume_part(self, part: str) -> None: ...

    def restart_broker(self, progress: Progress) -> None: ...

    def inflight(self, part: str) -> dict[str, Any] | None:
        """What the part's process works on now (its /inflight), or None."""
        ...

    def query(self, part: str, statement: str) -> list[list[str | None]]:
        """Rows of a read-only statement on a service's database, as text."""
        ...

    def budget_line(self) -> str:
        """The database connection budget the stack runs with ("" if unknown)."""
        ...

    def broker_url(self) -> str:
        """The stack's broker as shopctl on this machine reaches it."""
        ...

    def logs(self, parts: list[str], follow: bool) -> Iterator[LogLine]: ...

    def prometheus_url(self) -> str | None:
        """The Prometheus running beside the stack, if one does."""
        ...

    def spans_dir(self) -> Path | None:
        """Where the parts write their spans as OTLP-JSON lines (None: nowhere
        this machine reads)."""
        ...


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_distinct(ports: dict[str, int]) -> None:
    """One sentence when two parts are given one port, before anything starts."""
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ShopError(
                f"{seen[port]} and {name} are both given port {port}; "
                f"give each part its own (SHOP_{name.upper().replace('-', '_')}_PORT=<port>)"
            )
        seen[port] = name


def check_ports_free(ports: dict[str, int]) -> None:
    """One sentence naming the first taken port and how to choose another."""
    for name, port in ports.items():
        if not port_is_free(port):
            variable = f"SHOP_{name.upper().replace('-', '_')}_PORT"
            raise ShopError(
                f"port {port} for {name} is already in use; pick another with {variable}=<port>"
            )
