"""The sandbox as containers through docker-py: one private network,
RabbitMQ with management, one PostgreSQL per service with its own volume, the
services and the gateway. Everything is labelled with the project so `down`
removes exactly what this project made."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import queue
import re
import shutil
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopctl import frontend
from shopctl.errors import ShopError
from shopctl.runtimes.base import PartStatus, Progress, UpReport, check_ports_free
from shopctl.runtimes.budget import DEFAULT_CEILING, ConnectionBudget, plan_budget
from shopctl.runtimes.logs import LogLine, interleave, parse
from shopctl.runtimes.processes import url_ready
from shopctl.settings import (
    CORE_IMAGES,
    LOCAL_IMAGES,
    OFFICIAL_IMAGES,
    PROJECT_ROOT,
    SandboxSettings,
)
from shopctl.stack import (
    CONTAINER_LOG_CONFIG,
    CONTAINER_PORT,
    GATEWAY,
    PARTS,
    SERVICES,
    StackPart,
    part,
    replica_of,
    server_command,
    service_environment,
)

_OWN_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
PROJECT_LABEL = "shop.project"
PART_LABEL = "shop.part"
CONTENT_LABEL = "shop.content"  # the app image's build inputs, hashed (content_hash)
FILES_LABEL = "shop.files"  # the files put into a container (ContainerSpec.files), hashed
# Beside the stack, not of it: left out when their images cannot be had.
OBSERVERS = ("prometheus", "grafana", "traces")
SPANS_DIR = "/var/lib/shop/spans"  # in the app containers: the project's spans volume
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
# under the folder provisioning/dashboards/shop.yml has Grafana read
DASHBOARD = "/var/lib/grafana/dashboards/shop/shop.json"
OBSERVABILITY = PROJECT_ROOT / "observability"
# What compose/Dockerfile copies into the app image (.dockerignore leaves the rest out).
IMAGE_INPUTS = (
    "compose/Dockerfile",
    "requirements-runtime.lock",
    "services",
    "frontend/dist",
)


def content_hash(base_image: str) -> str:
    """A hash of everything the app image is built from (the files the
    Dockerfile copies and the base image's name), as compose and Tilt tag
    builds: a change anywhere in them makes another image."""
    digest = hashlib.sha256(base_image.encode())
    for name in IMAGE_INPUTS:
        root = PROJECT_ROOT / name
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for file in files:
            if not file.is_file() or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(PROJECT_ROOT)).encode() + b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


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
    hostname: str | None = None
    # What `up` asks on the container's address: a TCP port that accepts, or
    # with ``http_ready`` the part's own /readyz on it.
    probe_port: int | None = None
    http_ready: bool = False
    cpu_shares: int | None = None  # relative CPU weight (Docker's default 1024)
    # Files put into the container before it starts (path: text), read-only:
    # configuration that the compose file carries as `configs` with content,
    # so neither names a path of this machine.
    files: dict[str, str] = field(default_factory=dict)
    # the root filesystem read-only, /tmp a tmpfs (the app image needs no more)
    read_only: bool = False
    # more names for it on the project's network (a broker cluster's nodes
    # share one, as a Kubernetes Service's endpoints do)
    aliases: tuple[str, ...] = ()

    def labels(self) -> dict[str, str]:
        """The container's own labels: its part, and its files' hash."""
        own = {PART_LABEL: self.part}
        if self.files:
            own[FILES_LABEL] = self.files_hash()
        return own

    def files_hash(self) -> str:
        digest = hashlib.sha256()
        for path, text in sorted(self.files.items()):
            digest.update(f"{path}\0{text}\0".encode())
        return digest.hexdigest()[:16]


def _health(test: list[str], interval_s: float = 5.0) -> dict[str, Any]:
    """Docker's own health check, for `status` and compose. Every check is
    a `docker exec`, which costs tens of milliseconds of CPU: at a short
    interval sixteen containers' checks took a core from the start itself,
    so `up` probes the containers' addresses instead (``_probe``)."""
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
        # --replicas: more containers of a service on the same queues
        self.replicas = settings.replica_counts()

    def container_name(self, name: str) -> str:
        return f"{self.project}-{name}"

    @property
    def broker_host(self) -> str:
        """Where the services reach the broker: its container, or with a
        cluster the name every node answers to (Docker's DNS gives the
        running nodes' addresses, so a reconnect finds a live one)."""
        if self.settings.rabbitmq_nodes > 1:
            return self.container_name("broker")
        return self.container_name("rabbitmq")

    def rabbitmq_node_names(self) -> list[str]:
        """rabbitmq, rabbitmq-2, ...: the broker's nodes, by part."""
        return ["rabbitmq", *(f"rabbitmq-{n}" for n in range(2, self.settings.rabbitmq_nodes + 1))]

    def _cluster_config(self) -> str:
        """Each node knows the others by name (classic config peer
        discovery); the second and later start once the first is healthy
        and join it."""
        nodes = "".join(
            f"cluster_formation.classic_config.nodes.{n} = rabbit@{name}\n"
            for n, name in enumerate(self.rabbitmq_node_names(), start=1)
        )
        return (
            "cluster_formation.peer_discovery_backend = classic_config\n"
            + nodes
            # a node cut off from the others stops rather than diverge
            + "cluster_partition_handling = pause_minority\n"
        )

    def rabbitmq(self, name: str = "rabbitmq") -> ContainerSpec:
        first = name == "rabbitmq"
        cluster = self.settings.rabbitmq_nodes > 1
        environment = {
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "+sbwt none +sbwtdcpu none +sbwtdio none -ra wal_max_size_bytes 67108864"
            )
        }
        if cluster:
            # the nodes of one cluster share the Erlang cookie
            environment["RABBITMQ_ERLANG_COOKIE"] = f"{self.project}-sandbox-cluster"
        return ContainerSpec(
            part=name,
            name=self.container_name(name),
            image=self.settings.image("rabbitmq"),
            command=None,
            # Erlang's schedulers spin while idle by default; on a small
            # machine that spinning takes the CPU the booting services need.
            # The quorum queues' shared write-ahead log is kept in memory
            # until it rolls over at 512 MB by default: RabbitMQ's memory then
            # grows by that much under any steady traffic (the soak,
            # docs/performance-journal.md). 64 MB bounds it.
            environment=environment,
            # The AMQP listener accepts a connection (it opens last, after
            # the queues are recovered). Not `rabbitmq-diagnostics`: each run
            # of it boots an Erlang VM, about a CPU-second; every 2 s it took
            # half a core from the broker's own boot and from everything after.
            healthcheck=_health(["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5672"]),
            # AMQP too, on another port than the machine's own broker: shopctl's
            # tap, faults, dead letters and scenarios talk to it from here.
            ports=(
                {
                    "15672/tcp": ("127.0.0.1", self.settings.rabbitmq_management_port),
                    "5672/tcp": ("127.0.0.1", self.settings.rabbitmq_port),
                }
                if first
                else {}
            ),
            # Messages in the queues are data like the databases' rows: they
            # outlive `down` and go with `down --volumes`.
            volumes={
                f"{self.project}-{name}": {"bind": "/var/lib/rabbitmq", "mode": "rw"},
            },
            # RabbitMQ names its node after the host: a fixed name keeps the
            # node (and its data directory) the same on every start.
            hostname=name,
            probe_port=5672,
            # Everyone waits for the broker: when all start at once on a small
            # machine, it gets the CPU first (its boot is the longest path).
            # Shares are weighed against the sum of every busy container's:
            # 4096 against fifteen others' 1024 gave it a fifth of the
            # machine (9.5 s to boot, 5.3-5.9 s alone); 32768, two thirds.
            cpu_shares=32768,
            files={"/etc/rabbitmq/conf.d/20-cluster.conf": self._cluster_config()}
            if cluster
            else {},
            # the other nodes reach it by its node's host name
            aliases=(name, self.broker_host) if cluster else (),
        )

    def rabbitmq_nodes(self) -> list[ContainerSpec]:
        return [self.rabbitmq(name) for name in self.rabbitmq_node_names()]

    def budget(self, processes: int = 1) -> ConnectionBudget:
        """Each service's own server is sized for its processes (one, or its
        replicas): each process's connections, PostgreSQL's superuser slots
        and a reserve."""
        per_process = DEFAULT_CEILING
        superuser = 3
        return plan_budget(
            per_process * processes + superuser + self.settings.db_reserve,
            superuser,
            held_by_others=0,
            processes=processes,
            reserve=self.settings.db_reserve,
        )

    def processes(self, target: StackPart) -> int:
        return self.replicas.get(target.name, 1)

    def postgres(self, service: StackPart) -> ContainerSpec:
        budget = self.budget(self.processes(service))
        return ContainerSpec(
            part=f"postgres-{service.name}",
            name=self.container_name(f"postgres-{service.name}"),
            image=self.settings.image("postgres"),
            command=["postgres", "-c", f"max_connections={budget.max_connections}"],
            environment={"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": service.database},
            healthcheck=_health(["CMD", "pg_isready", "-U", "postgres", "-d", service.database]),
            probe_port=5432,
            ports={},
            volumes={
                f"{self.project}-pg-{service.name}": {
                    "bind": "/var/lib/postgresql/data",
                    "mode": "rw",
                }
            },
        )

    def service(self, target: StackPart, replica: int = 1) -> ContainerSpec:
        """The container of ``target``; replica n > 1 is ``<part>-n``, the
        same process with no published port (it competes on the queues)."""
        name = target.name if replica == 1 else f"{target.name}-{replica}"
        database = self.container_name(f"postgres-{target.name}")
        urls = {s.name: f"http://{self.container_name(s.name)}:{CONTAINER_PORT}" for s in SERVICES}
        env = service_environment(
            target,
            database_url=f"postgresql://postgres@{database}:5432/{target.database}",
            broker_url=f"amqp://guest:guest@{self.broker_host}:5672/",
            urls=urls,
            extra={
                **self.budget().environment(),
                "SHOP_FAULT_INJECTION": str(self.settings.fault_injection).lower(),
                "SHOP_SAGA": self.settings.saga,  # only the order service reads it
                "SHOP_ADMIN_EMAIL": self.settings.admin_email,
                "SHOP_ADMIN_PASSWORD": self.settings.admin_password,
                "SHOP_JWT_SECRET": self.settings.jwt_secret,  # empty: the sandbox's own
                # the gateway's login throttle, one count for all its processes
                "SHOP_REDIS_URL": f"redis://{self.container_name('redis')}:6379/0",
                "SHOP_FRONTEND_DIR": "/app/frontend/dist",  # the gateway serves it at /
                # spans as OTLP-JSON lines when no OTLP endpoint is set: every
                # container's in one volume, which `trace --spans` copies out
                "SHOP_SPANS_DIR": SPANS_DIR,
                **self._otlp_environment(),
            },
        )
        probe = (
            "import urllib.request,sys;"
            f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}/readyz',"
            "timeout=3).status!=200)"
        )
        ports = (
            {f"{CONTAINER_PORT}/tcp": ("127.0.0.1", self.settings.gateway_port)}
            if target.public and replica == 1
            else {}
        )
        return ContainerSpec(
            part=name,
            name=self.container_name(name),
            image=self.app_image,
            command=server_command(
                target, "0.0.0.0", CONTAINER_PORT, python="python3", log_config=CONTAINER_LOG_CONFIG
            ),
            environment=env,
            healthcheck=_health(["CMD", "python3", "-c", probe]),
            ports=ports,
            volumes={self.spans_volume: {"bind": SPANS_DIR, "mode": "rw"}},
            probe_port=CONTAINER_PORT,
            http_ready=True,
            read_only=True,
        )

    @property
    def spans_volume(self) -> str:
        return f"{self.project}-spans"

    def prometheus(self) -> ContainerSpec:
        """Prometheus scraping every container of the stack and RabbitMQ's
        plugin, with the shop's alerting rules: the configuration the local
        runtime's has, the targets by container name."""
        targets: dict[str, list[str]] = {}
        for spec in [*self.services(), self.gateway()]:
            targets.setdefault(replica_of(spec.part)[0], []).append(f"{spec.name}:{CONTAINER_PORT}")
        from shopctl.runtimes import prometheus  # httpx: loaded when a plan has Prometheus

        rules = "/etc/shop/rules.yml"
        config = prometheus.configuration(
            targets,
            broker_url=f"amqp://{self.container_name('rabbitmq')}:5672/",
            rules=Path(rules),
        )
        return ContainerSpec(
            part="prometheus",
            name=self.container_name("prometheus"),
            image=self.settings.image("prometheus"),
            # the official image's entrypoint is the binary: these are its arguments
            command=[
                "--config.file=/etc/shop/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--storage.tsdb.retention.time=2d",
                f"--web.listen-address=:{PROMETHEUS_PORT}",
                "--enable-feature=exemplar-storage",
            ],
            environment={},
            healthcheck=_health(
                ["CMD", "promtool", "query", "instant", f"http://127.0.0.1:{PROMETHEUS_PORT}", "1"]
            ),
            ports={f"{PROMETHEUS_PORT}/tcp": ("127.0.0.1", self.settings.prometheus_port)},
            volumes={f"{self.project}-prometheus": {"bind": "/prometheus", "mode": "rw"}},
            probe_port=PROMETHEUS_PORT,
            files={
                "/etc/shop/prometheus.yml": json.dumps(config, indent=2) + "\n",
                rules: (OBSERVABILITY / "prometheus" / "rules.yml").read_text(),
            },
        )

    def grafana(self) -> ContainerSpec:
        """Grafana with the stack's Prometheus as its datasource and the
        shop's dashboard (observability/grafana), anonymous viewers let in."""
        provisioning = OBSERVABILITY / "grafana" / "provisioning"
        return ContainerSpec(
            part="grafana",
            name=self.container_name("grafana"),
            image=self.settings.image("grafana"),
            command=None,
            environment={
                "PROMETHEUS_URL": f"http://{self.container_name('prometheus')}:{PROMETHEUS_PORT}",
                "GF_AUTH_ANONYMOUS_ENABLED": "true",
                "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
                "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": DASHBOARD,
            },
            healthcheck=_health(
                ["CMD", "wget", "-q", "-O", "-", f"http://127.0.0.1:{GRAFANA_PORT}/api/health"]
            ),
            ports={f"{GRAFANA_PORT}/tcp": ("127.0.0.1", self.settings.grafana_port)},
            volumes={},
            probe_port=GRAFANA_PORT,
            files={
                "/etc/grafana/provisioning/datasources/shop.yml": (
                    provisioning / "datasources" / "prometheus.yml"
                ).read_text(),
                "/etc/grafana/provisioning/dashboards/shop.yml": (
                    provisioning / "dashboards" / "shop.yml"
                ).read_text(),
                DASHBOARD: (OBSERVABILITY / "grafana" / "dashboards" / "shop.json").read_text(),
            },
        )

    def _otlp_environment(self) -> dict[str, str]:
        """With a trace backend among the containers, the parts export to it."""
        if not self.settings.image_traces:
            return {}
        address = f"http://{self.container_name('traces')}:{self.settings.traces_otlp_port}"
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": address}

    def traces(self) -> ContainerSpec:
        """The trace backend the settings name (SHOP_IMAGE_TRACES), as its
        image starts it: its OTLP/HTTP receiver for the parts, its UI published."""
        ui = self.settings.traces_ui_port
        return ContainerSpec(
            part="traces",
            name=self.container_name("traces"),
            image=self.settings.image("traces"),
            command=None,
            environment={},
            healthcheck={"test": ["NONE"]},  # images differ: `up` probes the OTLP port
            ports={f"{ui}/tcp": ("127.0.0.1", ui)},
            volumes={},
            probe_port=self.settings.traces_otlp_port,
        )

    def observers(self) -> list[ContainerSpec]:
        """Prometheus and Grafana, as the settings ask (SHOP_PROMETHEUS), and
        a trace backend when one is named (SHOP_IMAGE_TRACES)."""
        found = [self.traces()] if self.settings.image_traces else []
        if not self.settings.prometheus:
            return found
        return [self.prometheus(), *([self.grafana()] if self.settings.grafana else []), *found]

    def redis(self) -> ContainerSpec:
        """Redis for the gateway's login throttle, shared by its processes
        (no persistence: the counts live a minute)."""
        return ContainerSpec(
            part="redis",
            name=self.container_name("redis"),
            image=self.settings.image("redis"),
            command=["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""],
            environment={},
            healthcheck=_health(["CMD", "redis-cli", "ping"]),
            ports={},
            volumes={},
            probe_port=6379,
        )

    def infrastructure(self) -> list[ContainerSpec]:
        return [*self.rabbitmq_nodes(), self.redis(), *(self.postgres(s) for s in PARTS)]

    def services(self) -> list[ContainerSpec]:
        return [
            self.service(s, replica)
            for s in SERVICES
            for replica in range(1, self.processes(s) + 1)
        ]

    def gateway(self) -> ContainerSpec:
        return self.service(GATEWAY)

    def all(self) -> list[ContainerSpec]:
        return [*self.infrastructure(), *self.services(), self.gateway(), *self.observers()]

    def dependencies(self) -> dict[str, set[str]]:
        """What each container needs healthy before it starts: nothing, but
        the first node of a broker cluster for the others. A service waits
        for its database and the broker by itself, so its (CPU-bound)
        start-up overlaps theirs; the compose file has no depends_on for the
        same reason."""
        needs: dict[str, set[str]] = {spec.part: set() for spec in self.all()}
        nodes = self.rabbitmq_node_names()
        if len(nodes) > 1:
            for node in nodes[1:]:
                needs[node] = {"rabbitmq"}  # a cluster's later nodes join the first
            # and the services wait for the whole cluster: a queue or stream
            # declared before every node joined has fewer replicas, and a
            # stream left without a live one stops every publisher (506)
            for spec in [*self.services(), self.gateway()]:
                needs[spec.part] = set(nodes)
        return needs


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: SandboxSettings, *, stand_ins: bool = True) -> None:
        import docker

        self.client = docker.from_env(timeout=120)
        self.notes: list[str] = []  # said after `up`'s table (an image built, stand-ins used)
        if stand_ins:
            settings = self._with_available_images(settings)
        settings = self._with_running_replicas(settings)
        self.asked = settings  # before the observers' images are looked for
        settings = self._with_observers(settings, pull=False)
        self.settings = settings
        self.plan = DockerPlan(settings)
        self.labels = {PROJECT_LABEL: settings.project}

    def _with_available_images(self, settings: SandboxSettings) -> SandboxSettings:
        """The official images when they are here or can be pulled; else the
        local stand-ins when those are here (said in one line)."""
        from docker.errors import DockerException

        if settings.images != "official" or any(
            getattr(settings, f"image_{k}") for k in CORE_IMAGES
        ):
            return settings  # chosen explicitly: used as they are
        official = [OFFICIAL_IMAGES[k] for k in CORE_IMAGES]
        missing = [image for image in official if not self._has_image(image)]
        if not missing or not all(self._has_image(LOCAL_IMAGES[k]) for k in CORE_IMAGES):
            return settings
        for image in missing:
            try:
                self.client.images.pull(image)
            except DockerException:
                stand_ins = ", ".join(LOCAL_IMAGES[k] for k in CORE_IMAGES)
                self.notes.append(
                    f"using the local stand-in images ({stand_ins}): "
                    f"{image} is not here and cannot be pulled"
                )
                return settings.model_copy(update={"images": "local"})
        return settings

    def _with_observers(self, settings: SandboxSettings, pull: bool) -> SandboxSettings:
        """Prometheus and Grafana with the image the settings name, else
        Prometheus' stand-in when it is here; each left out (said in a note
        when ``pull``, in `up`) when no image of it is here or can be pulled.
        Without ``pull`` (status, logs) an image not here leaves it out."""
        from docker.errors import DockerException

        update: dict[str, Any] = {}
        asked = {
            "prometheus": settings.prometheus,
            "grafana": settings.prometheus and settings.grafana,
            "traces": bool(settings.image_traces),
        }
        for kind in OBSERVERS:
            if not asked[kind]:
                continue
            wanted = settings.image(kind)
            candidates = [wanted]
            if not getattr(settings, f"image_{kind}") and LOCAL_IMAGES.get(kind, wanted) != wanted:
                candidates.append(LOCAL_IMAGES[kind])
            chosen = next((image for image in candidates if self._has_image(image)), None)
            if chosen is None and pull:
                with contextlib.suppress(DockerException):
                    self.client.images.pull(wanted)
                    chosen = wanted
            if chosen is None:
                update.update({"image_traces": ""} if kind == "traces" else {kind: False})
                if pull:
                    stand_in = " (no stand-in: scripts/build-local-images builds one)"
                    self.notes.append(
                        f"{kind} left out: the image {wanted} is not here and cannot be pulled"
                        + (stand_in if kind in LOCAL_IMAGES else "")
                    )
            elif chosen != wanted:
                update[f"image_{kind}"] = chosen
        return settings.model_copy(update=update) if update else settings

    def _with_running_replicas(self, settings: SandboxSettings) -> SandboxSettings:
        """Without --replicas, the replicas an earlier `up --replicas` started
        (their containers say so) stay in the plan: status lists them, logs
        read them, a plain `up` keeps them."""
        if settings.replicas:
            return settings
        counts: dict[str, int] = {}
        for name in self._part_labels(settings.project):
            base, number = replica_of(name)
            if number > 1:
                counts[base] = max(counts.get(base, 1), number)
        if not counts:
            return settings
        text = ",".join(f"{name}={count}" for name, count in sorted(counts.items()))
        return settings.model_copy(update={"replicas": text})

    def _part_labels(self, project: str) -> list[str]:
        listed = self.client.api.containers(
            all=True, filters={"label": f"{PROJECT_LABEL}={project}"}
        )
        return [str(entry["Labels"].get(PART_LABEL, "")) for entry in listed]

    def _has_image(self, image: str) -> bool:
        return bool(self.client.images.list(name=image))

    skipped_because = ""

    def infrastructure(self) -> list[str]:
        return [spec.part for spec in self.plan.infrastructure()]

    def missing_images(self) -> list[str]:
        """Base images of the configured set that are not on this engine."""
        return [
            self.settings.image(k)
            for k in CORE_IMAGES
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
        self.settings = self._with_observers(self.asked, pull=True)
        self.plan = DockerPlan(self.settings)
        gateway = f"http://127.0.0.1:{self.settings.gateway_port}"
        urls = {"gateway": gateway, "frontend": gateway + "/"}  # built into the app image
        for spec in self.plan.observers():
            urls[spec.part] = f"http://127.0.0.1:{next(iter(spec.ports.values()))[1]}"
        existing = self._containers()
        specs = self.plan.all()
        planned = {spec.part for spec in specs}
        for name, container in list(existing.items()):
            if replica_of(name)[1] > 1 and name not in planned:  # fewer --replicas now
                container.remove(force=True)
                del existing[name]
                self.notes.append(f"removed {name}: not in --replicas any more")
        states = self._states()
        self.notes.append(frontend.ensure_built())  # the image takes frontend/dist: first
        fresh = not build and self._app_image_current()
        if fresh and all(
            spec.part in states and self._is_ready(spec, states, lambda *_: None) for spec in specs
        ):
            for spec in specs:
                progress(spec.part, "ready", "already running")
            return UpReport(self.name, True, time.monotonic() - started, urls, self.notes)

        running = {p for p, c in existing.items() if c.status == "running"}
        published = {
            "gateway": self.settings.gateway_port,
            "rabbitmq-management": self.settings.rabbitmq_management_port,
            "rabbitmq": self.settings.rabbitmq_port,
            **{spec.part: next(iter(spec.ports.values()))[1] for spec in self.plan.observers()},
        }
        check_ports_free(
            {name: port for name, port in published.items() if name.split("-")[0] not in running}
        )
        self._ensure_images(progress, build)
        self._ensure_network()
        self._start_in_order(specs, existing, progress)
        self._replicate_queues()
        return UpReport(self.name, False, time.monotonic() - started, urls, self.notes)

    def _replicate_queues(self) -> None:
        """With a broker cluster: a replica of every quorum queue and stream
        on every node. A queue declared while a node was still joining has
        fewer members, and a stream whose members are all down closes the
        connection of whoever publishes to it (RESOURCE_ERROR 506: every
        service's, through the events exchange): `rabbitmq-queues grow` and
        `rabbitmq-streams add_replica` add the missing ones."""
        nodes = self.plan.rabbitmq_node_names()
        if len(nodes) < 2:
            return
        first = self.client.containers.get(self.plan.container_name("rabbitmq"))
        code, output = first.exec_run(
            ["rabbitmqctl", "list_queues", "-q", "name", "type", "--formatter", "json"]
        )
        streams = (
            [q["name"] for q in cli_json(output) if q["type"] == "stream"] if code == 0 else []
        )
        commands = [["rabbitmq-queues", "grow", f"rabbit@{node}", "all"] for node in nodes]
        commands += [
            ["rabbitmq-streams", "add_replica", stream, f"rabbit@{node}"]
            for stream in streams
            for node in nodes
        ]
        for command in commands:
            code, output = first.exec_run(command)
            said = output.decode(errors="replace")
            if code != 0 and "already" not in said:
                self.notes.append(
                    f"{' '.join(command[:2])} {command[-2]}: {said.strip().splitlines()[-1][:200]}"
                )

    def _start_in_order(
        self, specs: list[ContainerSpec], existing: dict[str, Any], progress: Progress
    ) -> None:
        """Start each container as soon as what it needs is healthy, several
        at once: every database and the broker at the start, each service
        when its own database answers (it waits for the broker itself)."""
        needs = self.plan.dependencies()
        healthy: set[str] = set()
        submitted: dict[str, Future[None]] = {}
        deadline = time.monotonic() + self.settings.ready_timeout_s
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="docker-start") as pool:
            # The broker boots longest: its container goes first, alone.
            first = next(spec for spec in specs if spec.part == "rabbitmq")
            submitted[first.part] = pool.submit(
                self._ensure_container, first, existing.get(first.part), progress
            )
            submitted[first.part].result()
            while len(healthy) < len(specs):
                for spec in specs:
                    if spec.part not in submitted and needs[spec.part] <= healthy:
                        submitted[spec.part] = pool.submit(
                            self._ensure_container, spec, existing.get(spec.part), progress
                        )
                states = self._states()
                for spec in specs:
                    job = submitted.get(spec.part)
                    if spec.part in healthy or job is None or not job.done():
                        continue
                    job.result()  # raises what creating the container raised
                    if self._is_ready(spec, states, progress):
                        healthy.add(spec.part)
                if len(healthy) < len(specs) and time.monotonic() > deadline:
                    raise self._not_ready([s for s in specs if s.part not in healthy], progress)
                if len(healthy) < len(specs):
                    time.sleep(0.2)

    def _wait_ready(self, specs: list[ContainerSpec], progress: Progress) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        pending = list(specs)
        while pending:
            states = self._states()
            pending = [s for s in pending if not self._is_ready(s, states, progress)]
            if pending and time.monotonic() > deadline:
                raise self._not_ready(pending, progress)
            if pending:
                time.sleep(0.2)

    def _is_ready(
        self, spec: ContainerSpec, states: dict[str, tuple[str, str, str]], progress: Progress
    ) -> bool:
        """Ready by Docker's check or by our probe; ShopError if it exited."""
        state, health, address = states.get(spec.part, ("missing", "", ""))
        if state in ("exited", "dead"):
            progress(spec.part, "failed", "exited")
            raise ShopError(
                f"{spec.part} exited while starting",
                hint="its last log lines:\n" + _tail(self.client.containers.get(spec.name)),
            )
        if health == "healthy" or (state == "running" and _probe(spec, address)):
            progress(spec.part, "ready", "ready")
            return True
        return False

    def _not_ready(self, pending: list[ContainerSpec], progress: Progress) -> ShopError:
        for spec in pending:
            progress(spec.part, "failed", "not ready in time")
        return ShopError(
            f"{', '.join(s.part for s in pending)} did not become ready within "
            f"{self.settings.ready_timeout_s:.0f} s",
            hint=f"last log lines of {pending[0].part}:\n"
            + _tail(self.client.containers.get(pending[0].name)),
        )

    def _states(self) -> dict[str, tuple[str, str, str]]:
        """part -> (state, health, address) of every container of the
        project, from one listing call (no inspect per container)."""
        listed = self.client.api.containers(
            all=True, filters={"label": f"{PROJECT_LABEL}={self.settings.project}"}
        )
        states = {}
        for entry in listed:
            status = str(entry.get("Status", ""))
            health = (
                "healthy"
                if "(healthy)" in status
                else "unhealthy"
                if "(unhealthy)" in status
                else "starting"
            )
            networks = (entry.get("NetworkSettings") or {}).get("Networks") or {}
            address = str((networks.get(self.plan.network) or {}).get("IPAddress") or "")
            states[entry["Labels"].get(PART_LABEL, "")] = (
                str(entry.get("State", "")),
                health,
                address,
            )
        return states

    def _ensure_images(self, progress: Progress, build: bool) -> None:
        from docker.errors import ImageNotFound

        for kind in CORE_IMAGES:
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
        existed = self._app_image() is not None
        if not build and self._app_image_current():
            return
        started = time.monotonic()
        content = self._build_app_image(progress)
        why = "" if build or not existed else "the code changed since the last build: "
        self.notes.append(
            f"{why}built the app image {self.plan.app_image} (content {content}) "
            f"in {time.monotonic() - started:.1f} s"
        )

    def _app_image(self) -> Any | None:
        from docker.errors import ImageNotFound

        try:
            return self.client.images.get(self.plan.app_image)
        except ImageNotFound:
            return None

    def _app_image_current(self) -> bool:
        """Whether the app image was built from the files as they are now."""
        image = self._app_image()
        labels = (image.labels or {}) if image is not None else {}
        return labels.get(CONTENT_LABEL) == content_hash(self.settings.image("python"))

    def _build_app_image(self, progress: Progress) -> str:
        """Build the app image, labelled with the hash of what went in."""
        content = content_hash(self.settings.image("python"))
        for chunk in self.client.api.build(
            path=str(PROJECT_ROOT),
            dockerfile="compose/Dockerfile",
            tag=self.plan.app_image,
            buildargs={"PYTHON_IMAGE": self.settings.image("python")},
            labels={**self.labels, CONTENT_LABEL: content},
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
        return content

    def _ensure_network(self) -> None:
        if not self.client.networks.list(names=[self.plan.network]):
            self.client.networks.create(self.plan.network, driver="bridge", labels=self.labels)

    def _ensure_container(
        self, spec: ContainerSpec, existing: Any | None, progress: Progress
    ) -> None:
        if existing is not None:
            # A running container stays, unless its command changed (a
            # database sized for more processes after --replicas): its data
            # is in its volume, so it is made again.
            command = existing.attrs.get("Config", {}).get("Cmd")
            image = self.client.images.get(spec.image).id  # a rebuilt app image: made again
            if (
                existing.status == "running"
                and spec.command in (None, command)
                and existing.attrs.get("Image") == image
                and existing.labels.get(FILES_LABEL, "") == spec.labels().get(FILES_LABEL, "")
            ):
                progress(spec.part, "starting", "running")
                return
            existing.remove(force=True)
        for volume in spec.volumes:
            self.client.volumes.create(volume, labels=self.labels)  # kept if it exists
        progress(spec.part, "starting", spec.image)
        container = self.client.containers.create(
            spec.image,
            command=spec.command,
            name=spec.name,
            detach=True,
            environment=spec.environment,
            healthcheck=spec.healthcheck,
            labels={**self.labels, **spec.labels()},
            network=self.plan.network,
            ports=spec.ports,
            volumes=spec.volumes,
            restart_policy={"Name": "unless-stopped"},
            hostname=spec.hostname,
            cpu_shares=spec.cpu_shares,
            read_only=spec.read_only,
            tmpfs={"/tmp": "size=64m"} if spec.read_only else None,
            networking_config=(
                {
                    self.plan.network: self.client.api.create_endpoint_config(
                        aliases=list(spec.aliases)
                    )
                }
                if spec.aliases
                else None
            ),
        )
        if spec.files:
            container.put_archive("/", _tar(spec.files))
        container.start()

    # down, status, restart, logs ----------------------------------------

    def down(self, volumes: bool = False) -> list[str]:
        label = f"{PROJECT_LABEL}={self.settings.project}"
        removed = []
        for name, container in self._containers().items():
            with contextlib.suppress(Exception):
                if container.status == "paused":
                    container.unpause()
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
                    int(container.attrs.get("RestartCount") or 0),
                )
            )
        return rows

    def part_pids(self) -> dict[str, list[int]]:
        """The host pids of each running part's processes, for the bench's
        CPU and memory table: a service with its replicas, RabbitMQ, and
        every service's PostgreSQL together as ``postgresql``."""
        found: dict[str, list[int]] = {}
        for name, container in self._containers(all_states=False).items():
            base, _ = replica_of(name)
            if base in OBSERVERS:  # beside the stack (the local runtime's are not counted)
                continue
            group = "postgresql" if base.startswith("postgres-") else base
            try:
                listed = container.top(ps_args="-eo pid")
            except Exception:  # gone between the listing and now
                continue
            rows = listed.get("Processes") or []
            found.setdefault(group, []).extend(int(row[0]) for row in rows if row)
        return found

    def prometheus_url(self) -> str | None:
        container = self._containers(all_states=False).get("prometheus")
        if container is None:
            return None
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    def spans_dir(self) -> Path | None:
        """The spans volume's files, copied out of a running app container
        into the state directory (afresh on every call)."""
        app = next(
            (
                c
                for name, c in self._containers(all_states=False).items()
                if replica_of(name)[0] in {p.name for p in PARTS}
            ),
            None,
        )
        if app is None:
            return None
        target = self.settings.state_dir / f"{self.settings.project}-docker-spans"
        if target.is_dir():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        stream, _ = app.get_archive(SPANS_DIR)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            # the archive holds the directory "spans/" and its files
            tar.extractall(target, filter="data")
        return target / Path(SPANS_DIR).name

    def broker_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.settings.rabbitmq_port}/"

    def budget_line(self) -> str:
        return "one server per service: " + self.plan.budget().describe()

    def _container(self, name: str) -> tuple[ContainerSpec, Any]:
        spec = next((s for s in self.plan.all() if s.part == name), None)
        if spec is None:
            part(name)  # raises the usage error
            raise ShopError(f"{name} has no container here")
        container = self._containers().get(name)
        if container is None:
            raise ShopError(f"{name} is not running under the docker runtime", hint="shopctl up")
        return spec, container

    def restart(self, name: str, progress: Progress) -> None:
        spec, container = self._container(name)
        progress(name, "starting", "restarting")
        if container.status == "paused":
            container.unpause()
        container.restart(timeout=int(self.settings.stop_timeout_s))
        self._wait_ready([spec], progress)

    def stop_part(self, name: str, progress: Progress) -> None:
        _, container = self._container(name)
        progress(name, "starting", "stopping")
        if container.status == "paused":
            container.unpause()
        container.stop(timeout=int(self.settings.stop_timeout_s))

    def start_part(self, name: str, progress: Progress) -> None:
        spec, container = self._container(name)
        if container.status != "running":
            container.start()
        self._wait_ready([spec], progress)

    def pause_part(self, name: str) -> None:
        _, container = self._container(name)
        if container.status != "paused":
            container.pause()

    def resume_part(self, name: str) -> None:
        _, container = self._container(name)
        if container.status == "paused":
            container.unpause()

    def inflight(self, name: str) -> dict[str, Any] | None:
        """Asked from inside the part's container (only the gateway is published)."""
        part(name)
        try:
            _, container = self._container(name)
            code, output = container.exec_run(
                [
                    "python",
                    "-c",
                    "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                    f"'http://127.0.0.1:{CONTAINER_PORT}/inflight', timeout=2).read().decode())",
                ]
            )
        except Exception:  # docker-py's errors, or a container that is not running
            return None
        if code != 0:
            return None
        try:
            found: dict[str, Any] = json.loads(output)
        except ValueError:
            return None
        return found

    def query(self, name: str, statement: str) -> list[list[str | None]]:
        _, container = self._container(f"postgres-{part(name).name}")
        code, output = container.exec_run(
            [
                "psql",
                "-U",
                "postgres",
                "-d",
                part(name).database,
                "-v",
                "ON_ERROR_STOP=1",
                "-XAt",
                "-F",
                "\x1f",
                "-P",
                "null=\x1e",
                "-c",
                f"SET TRANSACTION READ ONLY; {statement}",
            ],
        )
        text = output.decode(errors="replace")
        if code != 0:
            raise ShopError(f"{name}'s database: {text.strip().splitlines()[-1]}")
        lines = [line for line in text.splitlines() if line and line != "SET"]
        return [[None if v == "\x1e" else v for v in line.split("\x1f")] for line in lines]

    def restart_broker(self, progress: Progress) -> None:
        self.restart("rabbitmq", progress)

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


def cli_json(output: bytes) -> Any:
    """A RabbitMQ CLI's JSON, after any lines it writes first (a cluster's
    cookie given in the environment is said to be deprecated, on stdout)."""
    text = output.decode(errors="replace")
    start = re.search(r"^[\[{]", text, re.MULTILINE)
    return json.loads(text[start.start() :]) if start else []


def _tar(files: dict[str, str]) -> bytes:
    """``files`` (absolute path: text) as a tar archive to unpack at /,
    read-only for everyone; Docker makes the directories on the way."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o444
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _strip_docker_stamp(raw: bytes) -> list[str]:
    """A line's own timestamp when it has one (the services'), else Docker's."""
    lines = []
    for line in raw.decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        own = _OWN_STAMP.match(text) or text.startswith('{"time":')  # a service's JSON line
        lines.append(text if own else f"{stamp[:23]} {text}")
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


def _probe(spec: ContainerSpec, address: str) -> bool:
    """Whether the container answers on its address (reachable from the
    host on Linux; elsewhere this stays False and Docker's check decides)."""
    if not address or spec.probe_port is None:
        return False
    if spec.http_ready:
        return url_ready(f"http://{address}:{spec.probe_port}", spec.part, timeout=0.5)
    try:
        socket.create_connection((address, spec.probe_port), timeout=0.3).close()
    except OSError:
        return False
    return True


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
