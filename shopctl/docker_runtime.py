"""The sandbox as containers through docker-py: one private network,
RabbitMQ with management, one PostgreSQL per service with its own volume, the
services and the gateway. Everything is labelled with the project so `down`
removes exactly what this project made."""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .budget import DEFAULT_CEILING, ConnectionBudget, plan_budget
from .errors import ShopError
from .logs import LogLine, interleave, parse
from .runtime import PartStatus, Progress, UpReport, check_ports_free
from .settings import PROJECT_ROOT, SandboxSettings
from .stack import (
    CONTAINER_LOG_CONFIG,
    CONTAINER_PORT,
    GATEWAY,
    PARTS,
    SERVICES,
    StackPart,
    part,
    server_command,
    service_environment,
)

_OWN_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
PROJECT_LABEL = "shop.project"
PART_LABEL = "shop.part"


def docker_engine_error() -> str | None:
    """None when a Docker engine answers, else why not (one line)."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except DockerException as exc:
        text = str(exc)
        if "FileNotFoundError" in text or "No such file" in text or "Connection refused" in text:
            return "no engine at the Docker socket"
        return text.splitlines()[0][:160]
    return None


@dataclass(frozen=True)
class ContainerSpec:
    """One container of the stack, as docker-py's ``containers.run`` takes it."""

    part: str
    name: str
    image: str
    command: list[str] | None
    environment: dict[str, str]
    healthcheck: dict[str, Any]
    ports: dict[str, tuple[str, int]]
    volumes: dict[str, dict[str, str]]


def _health(test: list[str], interval_s: float = 1.0) -> dict[str, Any]:
    ns = 1_000_000_000
    return {
        "test": test,
        "interval": int(interval_s * ns),
        "timeout": 5 * ns,
        "retries": 120,
        "start_period": 0,
    }


class DockerPlan:
    """The stack description turned into containers, a network and volumes.
    The docker runtime and the compose file are both made from this."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.project = settings.project
        self.network = f"{self.project}-net"
        self.app_image = f"{self.project}-app:dev"

    def container_name(self, name: str) -> str:
        return f"{self.project}-{name}"

    def rabbitmq(self) -> ContainerSpec:
        return ContainerSpec(
            part="rabbitmq",
            name=self.container_name("rabbitmq"),
            image=self.settings.image("rabbitmq"),
            command=None,
            environment={},
            # `ping` answers before the AMQP listener does; this checks the listeners.
            healthcheck=_health(
                ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"], 2.0
            ),
            ports={"15672/tcp": ("127.0.0.1", self.settings.rabbitmq_management_port)},
            volumes={},
        )

    def budget(self) -> ConnectionBudget:
        """Each service's own server is sized for its one process: the
        process's connections, PostgreSQL's superuser slots and a reserve."""
        per_process = DEFAULT_CEILING
        superuser = 3
        return plan_budget(
            per_process + superuser + self.settings.db_reserve,
            superuser,
            held_by_others=0,
            processes=1,
            reserve=self.settings.db_reserve,
        )

    def postgres(self, service: StackPart) -> ContainerSpec:
        budget = self.budget()
        return ContainerSpec(
            part=f"postgres-{service.name}",
            name=self.container_name(f"postgres-{service.name}"),
            image=self.settings.image("postgres"),
            command=["postgres", "-c", f"max_connections={budget.max_connections}"],
            environment={"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": service.database},
            healthcheck=_health(["CMD", "pg_isready", "-U", "postgres", "-d", service.database]),
            ports={},
            volumes={
                f"{self.project}-pg-{service.name}": {
                    "bind": "/var/lib/postgresql/data",
                    "mode": "rw",
                }
            },
        )

    def service(self, target: StackPart) -> ContainerSpec:
        database = self.container_name(f"postgres-{target.name}")
        urls = {s.name: f"http://{self.container_name(s.name)}:{CONTAINER_PORT}" for s in SERVICES}
        env = service_environment(
            target,
            database_url=f"postgresql://postgres@{database}:5432/{target.database}",
            broker_url=f"amqp://guest:guest@{self.container_name('rabbitmq')}:5672/",
            urls=urls,
            extra={
                **self.budget().environment(),
                "SHOP_ADMIN_EMAIL": self.settings.admin_email,
                "SHOP_ADMIN_PASSWORD": self.settings.admin_password,
            },
        )
        probe = (
            "import urllib.request,sys;"
            f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}/readyz',"
            "timeout=3).status!=200)"
        )
        ports = (
            {f"{CONTAINER_PORT}/tcp": ("127.0.0.1", self.settings.gateway_port)}
            if target.public
            else {}
        )
        return ContainerSpec(
            part=target.name,
            name=self.container_name(target.name),
            image=self.app_image,
            command=server_command(
                target, "0.0.0.0", CONTAINER_PORT, python="python3", log_config=CONTAINER_LOG_CONFIG
            ),
            environment=env,
            healthcheck=_health(["CMD", "python3", "-c", probe]),
            ports=ports,
            volumes={},
        )

    def infrastructure(self) -> list[ContainerSpec]:
        return [self.rabbitmq(), *(self.postgres(s) for s in PARTS)]

    def services(self) -> list[ContainerSpec]:
        return [self.service(s) for s in SERVICES]

    def gateway(self) -> ContainerSpec:
        return self.service(GATEWAY)

    def all(self) -> list[ContainerSpec]:
        return [*self.infrastructure(), *self.services(), self.gateway()]


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: SandboxSettings) -> None:
        import docker

        self.settings = settings
        self.plan = DockerPlan(settings)
        self.client = docker.from_env(timeout=120)
        self.labels = {PROJECT_LABEL: settings.project}

    skipped_because = ""

    def infrastructure(self) -> list[str]:
        return [spec.part for spec in self.plan.infrastructure()]

    def missing_images(self) -> list[str]:
        """Base images of the configured set that are not on this engine."""
        kinds = ("rabbitmq", "postgres", "python")
        return [
            self.settings.image(k)
            for k in kinds
            if not self.client.images.list(name=self.settings.image(k))
        ]

    def _containers(self, all_states: bool = True) -> dict[str, Any]:
        found = self.client.containers.list(
            all=all_states, filters={"label": f"{PROJECT_LABEL}={self.settings.project}"}
        )
        return {c.labels.get(PART_LABEL, c.name): c for c in found}

    def has_state(self) -> bool:
        """Any container, network or volume of this project (data kept by a
        plain `down` still belongs to the docker runtime)."""
        label = {"label": f"{PROJECT_LABEL}={self.settings.project}"}
        return bool(
            self._containers()
            or self.client.networks.list(filters=label)
            or self.client.volumes.list(filters=label)
        )

    # up ------------------------------------------------------------------

    def up(self, progress: Progress, build: bool = False) -> UpReport:
        started = time.monotonic()
        urls = {"gateway": f"http://127.0.0.1:{self.settings.gateway_port}"}
        existing = self._containers()
        specs = self.plan.all()
        if all(
            spec.part in existing and _health_of(existing[spec.part]) == "healthy" for spec in specs
        ):
            for spec in specs:
                progress(spec.part, "ready", "already running")
            return UpReport(self.name, True, time.monotonic() - started, urls)

        running = {p for p, c in existing.items() if c.status == "running"}
        published = {
            "gateway": self.settings.gateway_port,
            "rabbitmq-management": self.settings.rabbitmq_management_port,
        }
        check_ports_free(
            {name: port for name, port in published.items() if name.split("-")[0] not in running}
        )
        self._ensure_images(progress, build)
        self._ensure_network()
        for group in (self.plan.infrastructure(), self.plan.services(), [self.plan.gateway()]):
            for spec in group:
                self._ensure_container(spec, existing.get(spec.part), progress)
            self._wait_healthy(group, progress)
        return UpReport(self.name, False, time.monotonic() - started, urls)

    def _ensure_images(self, progress: Progress, build: bool) -> None:
        from docker.errors import ImageNotFound

        for kind in ("rabbitmq", "postgres", "python"):
            image = self.settings.image(kind)
            try:
                self.client.images.get(image)
            except ImageNotFound:
                try:
                    self.client.images.pull(image)
                except Exception:
                    raise ShopError(
                        f"the image {image} is not here and cannot be pulled",
                        hint="without a registry, build the stand-ins with "
                        "scripts/build-local-images and set SHOP_IMAGES=local",
                    ) from None
        try:
            self.client.images.get(self.plan.app_image)
            if not build:
                return
        except ImageNotFound:
            pass
        self._build_app_image(progress)

    def _build_app_image(self, progress: Progress) -> None:
        for chunk in self.client.api.build(
            path=str(PROJECT_ROOT),
            dockerfile="compose/Dockerfile",
            tag=self.plan.app_image,
            buildargs={"PYTHON_IMAGE": self.settings.image("python")},
            labels=self.labels,
            rm=True,
            decode=True,
        ):
            if "error" in chunk:
                raise ShopError(f"building {self.plan.app_image} failed: {chunk['error'].strip()}")
            stream = chunk.get("stream", "")
            if stream.startswith("Step "):
                for spec in self.plan.all():
                    if spec.image == self.plan.app_image:
                        progress(spec.part, "starting", f"building image: {stream.split(':')[0]}")

    def _ensure_network(self) -> None:
        if not self.client.networks.list(names=[self.plan.network]):
            self.client.networks.create(self.plan.network, driver="bridge", labels=self.labels)

    def _ensure_container(
        self, spec: ContainerSpec, existing: Any | None, progress: Progress
    ) -> None:
        if existing is not None:
            if existing.status == "running":
                progress(spec.part, "starting", "running")
                return
            existing.remove(force=True)
        for volume in spec.volumes:
            if not self.client.volumes.list(filters={"name": volume}):
                self.client.volumes.create(volume, labels=self.labels)
        progress(spec.part, "starting", spec.image)
        self.client.containers.run(
            spec.image,
            command=spec.command,
            name=spec.name,
            detach=True,
            environment=spec.environment,
            healthcheck=spec.healthcheck,
            labels={**self.labels, PART_LABEL: spec.part},
            network=self.plan.network,
            ports=spec.ports,
            volumes=spec.volumes,
            restart_policy={"Name": "unless-stopped"},
        )

    def _wait_healthy(self, specs: list[ContainerSpec], progress: Progress) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        pending = {spec.part: spec for spec in specs}
        while pending:
            for name, spec in list(pending.items()):
                container = self.client.containers.get(spec.name)
                health = _health_of(container)
                if container.status in ("exited", "dead"):
                    progress(name, "failed", f"exited ({container.attrs['State']['ExitCode']})")
                    raise ShopError(
                        f"{name} exited while starting",
                        hint="its last log lines:\n" + _tail(container),
                    )
                if health == "healthy":
                    progress(name, "ready", "healthy")
                    del pending[name]
            if pending and time.monotonic() > deadline:
                first = next(iter(pending.values()))
                for name in pending:
                    progress(name, "failed", "not healthy in time")
                raise ShopError(
                    f"{', '.join(pending)} did not become ready within "
                    f"{self.settings.ready_timeout_s:.0f} s",
                    hint=f"last log lines of {first.part}:\n"
                    + _tail(self.client.containers.get(first.name)),
                )
            if pending:
                time.sleep(0.5)

    # down, status, restart, logs ----------------------------------------

    def down(self, volumes: bool = False) -> list[str]:
        label = f"{PROJECT_LABEL}={self.settings.project}"
        removed = []
        for name, container in self._containers().items():
            with contextlib.suppress(Exception):
                container.stop(timeout=int(self.settings.stop_timeout_s))
            container.remove(force=True)
            removed.append(name)
        for network in self.client.networks.list(filters={"label": label}):
            network.remove()
            removed.append(f"network {network.name}")
        if volumes:
            for volume in self.client.volumes.list(filters={"label": label}):
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
        return removed

    def status(self) -> list[PartStatus]:
        containers = self._containers()
        rows = []
        for spec in self.plan.all():
            container = containers.get(spec.part)
            port = next(iter(spec.ports.values()))[1] if spec.ports else None
            if container is None:
                rows.append(PartStatus(spec.part, self.name, "stopped", "-", port, None))
                continue
            started = container.attrs["State"].get("StartedAt", "")
            rows.append(
                PartStatus(
                    spec.part,
                    self.name,
                    container.status,
                    {"healthy": "ready", "unhealthy": "not ready", "starting": "not ready"}.get(
                        _health_of(container), "-"
                    ),
                    port,
                    _epoch(started) if container.status == "running" else None,
                )
            )
        return rows

    def budget_line(self) -> str:
        return "one server per service: " + self.plan.budget().describe()

    def restart(self, name: str, progress: Progress) -> None:
        spec = next((s for s in self.plan.all() if s.part == name), None)
        if spec is None:
            part(name)  # raises the usage error
            return
        container = self._containers().get(name)
        if container is None:
            raise ShopError(f"{name} is not running under the docker runtime", hint="shopctl up")
        progress(name, "starting", "restarting")
        container.restart(timeout=int(self.settings.stop_timeout_s))
        self._wait_healthy([spec], progress)

    def logs(self, parts: list[str], follow: bool) -> Iterator[LogLine]:
        containers = self._containers()
        names = parts or [s.part for s in self.plan.all() if s.part in containers]
        if not follow:
            sources = {
                name: parse(name, _strip_docker_stamp(containers[name].logs(timestamps=True)))
                for name in names
                if name in containers
            }
            return iter(interleave(sources))
        return _follow(containers, names)


def _strip_docker_stamp(raw: bytes) -> list[str]:
    """A line's own timestamp when it has one (the services'), else Docker's."""
    lines = []
    for line in raw.decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        lines.append(text if _OWN_STAMP.match(text) else f"{stamp[:23]} {text}")
    return lines


def _follow(containers: dict[str, Any], names: list[str]) -> Iterator[LogLine]:
    lines: queue.Queue[LogLine] = queue.Queue()

    def pump(name: str) -> None:
        for raw in containers[name].logs(timestamps=True, stream=True, follow=True):
            for line in parse(name, _strip_docker_stamp(raw)):
                lines.put(line)

    for name in names:
        if name in containers:
            threading.Thread(target=pump, args=(name,), daemon=True).start()
    while True:
        yield lines.get()


def _health_of(container: Any) -> str:
    container.reload()
    health = container.attrs.get("State", {}).get("Health", {})
    return str(health.get("Status", "none"))


def _tail(container: Any, lines: int = 20) -> str:
    try:
        return str(container.logs(tail=lines).decode(errors="replace")).rstrip()
    except Exception:
        return "(no log)"


def _epoch(stamp: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
