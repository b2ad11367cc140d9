"""The sandbox's settings: ports, where state lives, how to reach the
machine's servers (local runtime) and which images to use (docker runtime).
Every field reads SHOP_<FIELD> from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopctl.errors import UsageError
from shopctl.stack import PARTS

PROJECT_ROOT = Path(__file__).resolve().parents[1]

OFFICIAL_IMAGES = {
    "python": "python:3.11-slim-bookworm",
    "rabbitmq": "rabbitmq:3.13-management",
    "postgres": "postgres:16",
    "redis": "redis:7-bookworm",
    # beside the stack (SHOP_PROMETHEUS), where their images can be had
    "prometheus": "prom/prometheus:v2.53.4",
    "grafana": "grafana/grafana:11.6.0",
}
LOCAL_IMAGES = {
    "python": "shop/python:local",
    "rabbitmq": "shop/rabbitmq:local",
    "postgres": "shop/postgres:local",
    "redis": "shop/redis:local",
    "prometheus": "shop/prometheus:local",  # Grafana has no stand-in: Debian has no package
}
# What the stack cannot run without; Prometheus and Grafana are left out,
# with a note, when their images cannot be had.
CORE_IMAGES = ("python", "rabbitmq", "postgres", "redis")


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    state_dir: Path = Field(default=PROJECT_ROOT / ".shop")
    project: str = Field(default="shop", pattern=r"^[a-z][a-z0-9-]{0,30}$")

    gateway_port: int = Field(default=8080, ge=1, le=65535)
    catalog_port: int = Field(default=8101, ge=1, le=65535)
    cart_port: int = Field(default=8102, ge=1, le=65535)
    order_port: int = Field(default=8103, ge=1, le=65535)
    inventory_port: int = Field(default=8104, ge=1, le=65535)
    payment_port: int = Field(default=8105, ge=1, le=65535)
    shipping_port: int = Field(default=8106, ge=1, le=65535)
    rabbitmq_management_port: int = Field(default=15672, ge=1, le=65535)
    # the docker runtime's broker on this machine (5672 is the machine's own)
    rabbitmq_port: int = Field(default=5673, ge=1, le=65535)
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    grafana_port: int = Field(default=3000, ge=1, le=65535)
    prometheus: bool = Field(
        default=True,
        description="start Prometheus beside the stack (when it is installed), and Grafana "
        "with it on the docker runtime (when its image can be had)",
    )

    saga: Literal["choreographed", "orchestrated"] = Field(
        default="choreographed",
        description="how the order service runs the orders it creates (docs/saga.md)",
    )

    # The sandbox runs in sandbox mode: its parts obey `shopctl fault`.
    fault_injection: bool = True
    replicas: str = ""  # inventory=2,payment=2: competing consumers (local runtime)
    rabbitmq_nodes: int = Field(
        default=1,
        ge=1,
        le=5,
        description="docker runtime: RabbitMQ as a cluster of this many nodes (3: one may "
        "stop and the quorum queues go on)",
    )

    admin_email: str = "admin@shop.local"
    admin_password: str = "admin"
    jwt_secret: str = Field(
        default="", description="the gateway's token secret (empty: the sandbox's own)"
    )

    # local runtime: the machine's own servers
    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_reserve: int = Field(
        default=10, ge=0, description="PostgreSQL connections the stack leaves for people and tools"
    )
    db_ceiling: int = Field(
        default=21,
        ge=3,
        description="PostgreSQL connections one process may hold at most (its share of what "
        "is free otherwise): lower it to run two stacks on one server",
    )
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_prefix: str = Field(default="shop", pattern=r"^[a-z][a-z0-9_]{0,30}$")

    # docker runtime
    images: str = Field(default="official", pattern=r"^(official|local)$")
    image_python: str = ""
    image_rabbitmq: str = ""
    image_postgres: str = ""
    image_redis: str = ""
    image_prometheus: str = ""
    image_grafana: str = ""
    grafana: bool = Field(
        default=True, description="Grafana beside Prometheus (docker runtime: needs its image)"
    )
    image_traces: str = Field(
        default="",
        description="a trace backend's image (Jaeger all-in-one, the Aspire dashboard, an "
        "OpenTelemetry Collector) the docker runtime starts beside the stack, its parts "
        "exporting OTLP to it; empty: none, spans go to files",
    )
    traces_otlp_port: int = Field(
        default=4318, ge=1, le=65535, description="its OTLP/HTTP receiver, in its container"
    )
    traces_ui_port: int = Field(
        default=16686, ge=1, le=65535, description="its UI, published on 127.0.0.1 as the same"
    )

    ready_timeout_s: float = Field(default=120.0, gt=0)
    stop_timeout_s: float = Field(default=10.0, gt=0)
    lock_wait_s: float = Field(
        default=300.0, ge=0, description="how long up/down/restart wait for another one"
    )

    def port(self, part: str) -> int:
        value: int = getattr(self, f"{part}_port")
        return value

    def ports(self) -> dict[str, int]:
        """Every process's port: a replica n of a part takes its part's port
        + 1000 x (n - 1)."""
        ports = {p.name: self.port(p.name) for p in PARTS}
        for name, count in self.replica_counts().items():
            for n in range(2, count + 1):
                ports[f"{name}-{n}"] = self.port(name) + 1000 * (n - 1)
        return ports

    def replica_counts(self) -> dict[str, int]:
        """SHOP_REPLICAS=inventory=2,payment=2: processes of each part (1 if unnamed)."""
        counts: dict[str, int] = {}
        for item in filter(None, (i.strip() for i in self.replicas.split(","))):
            name, _, count = item.partition("=")
            if name not in {p.name for p in PARTS} or name == "gateway" or not count.isdigit():
                raise UsageError(
                    f"bad replicas entry {item!r}; write PART=N for a service, "
                    "e.g. inventory=2,payment=2"
                )
            if not 1 <= int(count) <= 8:
                raise UsageError(f"{name}: between 1 and 8 processes")
            counts[name] = int(count)
        return counts

    def image(self, kind: str) -> str:
        """An image setting, else the default of the chosen image set."""
        explicit: str = getattr(self, f"image_{kind}")
        if explicit:
            return explicit
        if self.images == "local" and kind in LOCAL_IMAGES:
            return LOCAL_IMAGES[kind]
        return OFFICIAL_IMAGES[kind]

    def mode_notice(self) -> str:
        """The stack's mode in one line, for `up`, `status` and `doctor`."""
        if self.fault_injection:
            return (
                "sandbox mode: fault switches on, the sandbox's own JWT secret and admin "
                "password (never for a stack others can reach; docs/deploy.md)"
            )
        return (
            "production mode: no fault switches; the gateway needs SHOP_JWT_SECRET and "
            "SHOP_ADMIN_PASSWORD of your own"
        )

    def admin_notice(self) -> str:
        return f"admin login: {self.admin_email} / {self.admin_password}"
