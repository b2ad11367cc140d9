"""What every runtime offers the CLI, and how one is chosen."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import EXIT_NO_RUNTIME, ShopError, UsageError
from .logs import LogLine
from .settings import SandboxSettings

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


def select_runtime(choice: str, settings: SandboxSettings) -> Runtime:
    """docker, local, or auto: docker when an engine answers, local otherwise."""
    from .docker_runtime import DockerRuntime, docker_engine_error
    from .local import LocalRuntime

    if choice == "local":
        return LocalRuntime(settings)
    error = docker_engine_error()
    if choice == "docker":
        if error:
            raise ShopError(
                f"no Docker engine answers ({error})",
                hint="start dockerd, or use --runtime local",
                exit_code=EXIT_NO_RUNTIME,
            )
        return DockerRuntime(settings)
    if choice == "auto":
        if error:
            return LocalRuntime(settings)
        # auto takes docker only with the configured images: a first docker
        # `up` builds an image, which a plain `scripts/sandbox` should not.
        docker_runtime = DockerRuntime(settings, stand_ins=False)
        missing = docker_runtime.missing_images()
        if missing:
            # Without a registry a missing image cannot be pulled: stay local.
            docker_runtime.skipped_because = f"images not here: {', '.join(missing)}"
            local = LocalRuntime(settings)
            local.chosen_because = docker_runtime.skipped_because
            return local
        return docker_runtime
    raise UsageError(f"unknown runtime {choice!r}; use docker, local or auto")


def current_runtime(settings: SandboxSettings) -> Runtime:
    """The runtime whose stack is up (for down, status, logs, restart):
    the one that left state behind, else local."""
    from .local import LocalRuntime

    local = LocalRuntime(settings)
    if local.has_state():
        return local
    from .docker_runtime import DockerRuntime, docker_engine_error

    if not docker_engine_error():
        docker_runtime = DockerRuntime(settings, stand_ins=False)  # images play no part here
        if docker_runtime.has_state():
            return docker_runtime
    return local
