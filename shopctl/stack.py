"""The one description of the stack: its parts, how each starts, what it
needs. The runtimes and the test fixtures derive everything from here."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from shopctl.errors import UsageError


@dataclass(frozen=True)
class StackPart:
    """One service process of the stack."""

    name: str
    app: str  # the app factory, "module:function"
    port: int  # the sandbox's default port on 127.0.0.1
    public: bool = False  # a person opens it (the gateway)
    env: dict[str, str] = field(default_factory=dict)
    # Routing keys it consumes, one queue `<name>.<key>` (and `.dlq`) each;
    # tests/unit/test_stack.py keeps this in step with the services' code.
    consumes: tuple[str, ...] = ()

    def queues(self) -> list[str]:
        return [f"{self.name}.{key}" for key in self.consumes]

    @property
    def database(self) -> str:
        return f"shop_{self.name}"


SERVICES: tuple[StackPart, ...] = (
    StackPart("catalog", "services.catalog.app:create_app", 8101),
    StackPart("cart", "services.cart.app:create_app", 8102),
    StackPart(
        "order",
        "services.order.app:create_app",
        8103,
        consumes=(
            "cart.checked_out",
            "stock.reserved",
            "stock.reservation_failed",
            "payment.succeeded",
            "payment.failed",
            "shipping.created",
            "saga.step_compensated",  # orchestrated: a compensation's reply
        ),
    ),
    StackPart(
        "inventory",
        "services.inventory.app:create_app",
        8104,
        consumes=(
            "product.created",
            "order.created",
            "payment.failed",
            "order.cancelled",
            "shipping.created",
            # orchestrated: the orchestrator's commands
            "stock.reserve",
            "stock.release",
            "stock.ship",
        ),
    ),
    StackPart(
        "payment",
        "services.payment.app:create_app",
        8105,
        consumes=("stock.reserved", "order.cancelled", "payment.charge", "payment.refund"),
    ),
    StackPart(
        "shipping",
        "services.shipping.app:create_app",
        8106,
        consumes=("payment.succeeded", "order.cancelled", "shipment.create", "shipment.cancel"),
    ),
)
GATEWAY = StackPart("gateway", "services.gateway.app:create_app", 8080, public=True)
PARTS: tuple[StackPart, ...] = (*SERVICES, GATEWAY)


def replica_of(name: str) -> tuple[str, int]:
    """("inventory", 2) for inventory-2, a replica's process or container;
    (name, 1) for anything else (postgres-inventory is no replica)."""
    base, _, number = name.rpartition("-")
    if number.isdigit() and base in {p.name for p in PARTS}:
        return base, int(number)
    return name, 1


def part(name: str) -> StackPart:
    for candidate in PARTS:
        if candidate.name == name:
            return candidate
    known = ", ".join(p.name for p in PARTS)
    raise UsageError(f"no part named {name!r}; the parts are {known}")


def service_environment(
    target: StackPart,
    *,
    database_url: str,
    broker_url: str,
    urls: dict[str, str],
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The SHOP_* variables one part's process starts with."""
    env = {
        "SHOP_SERVICE_NAME": target.name,
        "SHOP_DATABASE_URL": database_url,
        "SHOP_BROKER_URL": broker_url,
        **{f"SHOP_{name.upper()}_URL": url for name, url in urls.items()},
        **target.env,
    }
    env.update(extra or {})
    return env


LOG_CONFIG_MODULE = "services.common"
LOG_CONFIG_FILE = "logging.json"


def server_command(
    target: StackPart,
    host: str,
    port: int,
    python: str = sys.executable,
    log_config: str | None = None,
) -> list[str]:
    """The command that serves one part (uvicorn on uvloop, timestamped logs)."""
    return [python, "-m", "uvicorn", *uvicorn_args(target, host, port, log_config)]


KEEP_ALIVE_S = 75  # a part's idle HTTP connections (uvicorn)


def uvicorn_args(
    target: StackPart, host: str, port: int, log_config: str | None = None
) -> list[str]:
    """uvicorn's arguments for one part: the command's, and what a part
    forked by the local runtime's fork server runs uvicorn's CLI with."""
    return [
        "--factory",
        target.app,
        "--host",
        host,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-config",
        log_config or log_config_path(),
        "--timeout-graceful-shutdown",
        "10",
        # Longer than any client of a part keeps an idle connection (the
        # gateway's and cart's shared client, 30 s): with uvicorn's 5 s
        # default, a request sent on a connection just as the server closed
        # it failed ("Server disconnected without sending a response").
        "--timeout-keep-alive",
        str(KEEP_ALIVE_S),
    ]


def log_config_path() -> str:
    """The services' logging config (timestamps first, so logs interleave)."""
    from importlib.resources import files

    return str(files(LOG_CONFIG_MODULE).joinpath(LOG_CONFIG_FILE))


# Inside the app image (compose/Dockerfile): the project is copied to /app.
CONTAINER_PORT = 8000
CONTAINER_LOG_CONFIG = "/app/services/common/logging.json"
