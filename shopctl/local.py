"""The stack as local processes against a PostgreSQL and a RabbitMQ already
running on this machine: one database per service, uvicorn per part."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from . import processes
from .errors import ShopError
from .stack import PARTS, SERVICES, StackPart, server_command, service_environment


@dataclass
class LocalStackConfig:
    pg_admin_url: str  # a superuser's URL, to create databases (and roles)
    broker_url: str
    ports: dict[str, int]  # part name (or "name-2" for a replica) -> port
    log_dir: Path
    database_prefix: str = "shop"
    create_roles: bool = False  # one login role per service, owner of its database
    replicas: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"


def _url_with(admin_url: str, user: str | None, database: str) -> str:
    """The admin URL pointed at another database (and user)."""
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    host = info.get("host", "127.0.0.1")
    port = info.get("port", "5432")
    login = user or str(info.get("user") or "postgres")
    password = info.get("password")
    auth = f"{login}:{password}" if password and login == info.get("user") else login
    return f"postgresql://{auth}@{host}:{port}/{database}"


class LocalStack:
    """Creates the databases and starts, watches and stops the processes."""

    def __init__(self, config: LocalStackConfig) -> None:
        self.config = config
        self.running: dict[str, processes.RunningPart] = {}
        self.commands: dict[str, list[str]] = {}
        self.envs: dict[str, dict[str, str]] = {}

    def database_name(self, target: StackPart) -> str:
        return f"{self.config.database_prefix}_{target.name}"

    def database_url(self, target: StackPart) -> str:
        user = self.database_name(target) if self.config.create_roles else None
        return _url_with(self.config.pg_admin_url, user, self.database_name(target))

    def url(self, name: str) -> str:
        return f"http://{self.config.host}:{self.config.ports[name]}"

    def launches(self) -> list[tuple[str, StackPart]]:
        """(process name, part) for every process, replicas included."""
        result = []
        for target in PARTS:
            result.append((target.name, target))
            for n in range(2, self.config.replicas.get(target.name, 1) + 1):
                result.append((f"{target.name}-{n}", target))
        return result

    def create_databases(self) -> list[str]:
        """Create what is missing; returns the databases created now."""
        created = []
        try:
            with psycopg.connect(
                self.config.pg_admin_url, autocommit=True, connect_timeout=5
            ) as db:
                for target in PARTS:
                    name = self.database_name(target)
                    if self.config.create_roles:
                        exists = db.execute(
                            "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)
                        ).fetchone()
                        if not exists:
                            db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
                    if db.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                    ).fetchone():
                        continue
                    owner = (
                        sql.SQL(" OWNER {}").format(sql.Identifier(name))
                        if self.config.create_roles
                        else sql.SQL("")
                    )
                    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)) + owner)
                    created.append(name)
        except psycopg.OperationalError as exc:
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise ShopError(
                f"PostgreSQL cannot be reached at {_url_with(self.config.pg_admin_url, None, '')} "
                f"({first_line})",
                hint="start it (pg_ctlcluster <version> main start) or check shopctl doctor",
            ) from None
        return created

    def drop_databases(self) -> None:
        with psycopg.connect(self.config.pg_admin_url, autocommit=True) as db:
            for target in PARTS:
                db.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database_name(target))
                    )
                )

    def start(self) -> None:
        """Start every process (not waiting for readiness)."""
        service_urls = {s.name: self.url(s.name) for s in SERVICES}
        for name, target in self.launches():
            self.envs[name] = service_environment(
                target,
                database_url=self.database_url(target),
                broker_url=self.config.broker_url,
                urls=service_urls,
                extra=self.config.extra_env,
            )
            self.commands[name] = server_command(target, self.config.host, self.config.ports[name])
            self.running[name] = processes.start_process(
                name,
                self.commands[name],
                self.envs[name],
                self.config.ports[name],
                self.config.log_dir,
            )

    def wait_ready(self, deadline_s: float = 90.0) -> None:
        processes.wait_ready(list(self.running.values()), deadline_s)

    def stop(self, name: str | None = None) -> None:
        """Stop one process, or all of them."""
        for key in [name] if name else list(self.running):
            processes.stop_process(self.running[key])

    def restart(self, name: str, deadline_s: float = 60.0) -> None:
        self.stop(name)
        old = self.running[name]
        self.running[name] = processes.start_process(
            name, self.commands[name], self.envs[name], old.port, self.config.log_dir
        )
        processes.wait_ready([self.running[name]], deadline_s)
