"""The stack as local processes against a PostgreSQL and a RabbitMQ already
running on this machine: one database per service, uvicorn per part."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shopctl import frontend
from shopctl.errors import ShopError
from shopctl.runtimes import processes, prometheus
from shopctl.runtimes.base import (
    PartStatus,
    Progress,
    UpReport,
    check_ports_distinct,
    check_ports_free,
)
from shopctl.runtimes.budget import DEFAULT_CEILING, ConnectionBudget, read_budget
from shopctl.runtimes.logs import LogLine, follow_files, read_files
from shopctl.runtimes.prometheus import LocalPrometheus
from shopctl.settings import SandboxSettings
from shopctl.stack import (
    PARTS,
    SERVICES,
    StackPart,
    part,
    replica_of,
    service_environment,
    uvicorn_args,
)

if TYPE_CHECKING:
    import psycopg


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
    # Every process carries SHOP_SANDBOX=<marker>, so `down` finds them all
    # even when the state file is wrong or lost (as docker labels containers).
    marker: str = ""
    db_reserve: int = 10  # PostgreSQL connections left for people and tools
    db_ceiling: int = DEFAULT_CEILING  # connections one process may hold at most


def _url_with(admin_url: str, user: str | None, database: str) -> str:
    """The admin URL pointed at another database (and user)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(admin_url)
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
        self.budget: ConnectionBudget | None = None
        self.specs: dict[str, processes.Launch] = {}
        self.supervisors: set[int] = set()

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
        import psycopg  # where a database is asked: every command imports this module
        from psycopg import sql

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
            raise self._unreachable(exc) from None
        return created

    def _unreachable(self, exc: psycopg.OperationalError) -> ShopError:
        where = urlsplit(self.config.pg_admin_url)
        reason = str(exc).strip().splitlines()[0].rsplit("failed: ", 1)[-1] if str(exc) else ""
        return ShopError(
            f"PostgreSQL cannot be reached at {where.hostname}:{where.port or 5432}"
            + (f" ({reason.lower()})" if reason else ""),
            hint="start it (pg_ctlcluster <version> main start) or check shopctl doctor",
        )

    def drop_databases(self) -> None:
        """Drop the databases (and the roles, when this stack made them)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.config.pg_admin_url, autocommit=True) as db:
            for target in PARTS:
                name = sql.Identifier(self.database_name(target))
                db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
                if self.config.create_roles:
                    db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(name))

    def start(self) -> None:
        """Start every process (not waiting for readiness)."""
        self.start_parts(list(PARTS))

    def connection_budget(self) -> ConnectionBudget:
        """Each process's share of the server's connections (read once)."""
        import psycopg

        if self.budget is None:
            try:
                self.budget = read_budget(
                    self.config.pg_admin_url,
                    len(self.launches()),
                    self.config.db_reserve,
                    [self.database_name(t) for t in PARTS],
                    self.config.db_ceiling,
                )
            except psycopg.OperationalError as exc:
                raise self._unreachable(exc) from None
        return self.budget

    def start_parts(
        self,
        targets: list[StackPart],
        *,
        truncate_logs: bool = False,
        skip: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Start the processes of ``targets`` (replicas included, but none
        named in ``skip``), each with its share of the database connections."""
        budget = self.connection_budget().environment()
        service_urls = {s.name: self.url(s.name) for s in SERVICES}
        wanted = {t.name for t in targets}
        launches = []
        for name, target in self.launches():
            if target.name not in wanted or name in skip:
                continue
            env = service_environment(
                target,
                database_url=self.database_url(target),
                broker_url=self.config.broker_url,
                urls=service_urls,
                extra={**budget, **self.config.extra_env},
            )
            if self.config.marker:
                env[processes.MARKER_VARIABLE] = self.config.marker
            port = self.config.ports[name]
            self.specs[name] = processes.Launch(
                name,
                target.app,
                port,
                uvicorn_args(target, self.config.host, port),
                env,
                target.name,
            )
            launches.append(self.specs[name])
        self._fork(launches, truncate=truncate_logs)

    def _fork(self, launches: list[processes.Launch], *, truncate: bool = False) -> None:
        """One fork server imports the apps once and forks each part under a
        supervisor that restarts a part that exits."""
        for running in processes.start_forked(launches, self.config.log_dir, truncate=truncate):
            self.running[running.name] = running
            if running.supervisor is not None:
                self.supervisors.add(running.supervisor)

    def wait_ready(
        self,
        deadline_s: float = 90.0,
        on_ready: Callable[[processes.RunningPart], None] | None = None,
    ) -> None:
        processes.wait_ready(list(self.running.values()), deadline_s, on_ready)

    def stop(self, name: str | None = None) -> None:
        """Stop one process (its supervisor leaves it down), or all of them
        (the supervisors stop their parts together)."""
        if name is None:
            for supervisor in self.supervisors:
                processes.stop_supervisor(supervisor)
            self.supervisors.clear()
        for key in [name] if name else list(self.running):
            processes.stop_process(self.running[key])

    def restart(self, name: str, deadline_s: float = 60.0) -> None:
        """Stop a process and start it again: its supervisor forks it anew, or
        a new fork server does when the supervisor is gone."""
        self.stop(name)
        running = self.running[name]
        pid = processes.start_supervised(running.log_path)
        if pid is None:
            self._fork([self.specs[name]])
        else:
            running.process = processes.ForkedProcess(pid, processes.exit_file(running.log_path))
        processes.wait_ready([self.running[name]], deadline_s)


class LocalRuntime:
    """The sandbox as local processes; pids, logs and state under
    ``<state_dir>/local``. Survives the shopctl process that started it."""

    name = "local"
    chosen_because = ""  # why auto did not take docker, when it did not

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "local"
        self.state_file = self.home / "state.json"
        self.log_dir = self.home / "logs"
        self.stack = LocalStack(
            LocalStackConfig(
                pg_admin_url=settings.pg_admin_url,
                broker_url=settings.broker_url,
                ports=settings.ports(),
                log_dir=self.log_dir,
                database_prefix=settings.database_prefix,
                create_roles=True,
                marker=str(self.home.resolve()),
                db_reserve=settings.db_reserve,
                db_ceiling=settings.db_ceiling,
                replicas=settings.replica_counts(),
                extra_env={
                    "SHOP_FAULT_INJECTION": str(settings.fault_injection).lower(),
                    "SHOP_SAGA": settings.saga,  # only the order service reads it
                    "SHOP_ADMIN_EMAIL": settings.admin_email,
                    "SHOP_ADMIN_PASSWORD": settings.admin_password,
                    "SHOP_JWT_SECRET": settings.jwt_secret,  # empty: the sandbox's own
                    # only the gateway reads it; served when it has been built
                    "SHOP_FRONTEND_DIR": str(frontend.DIST),
                    # spans as OTLP-JSON lines when no OTLP endpoint is set
                    "SHOP_SPANS_DIR": str(self.home / "spans"),
                },
            )
        )

    def infrastructure(self) -> list[str]:
        return ["postgresql", "rabbitmq"]

    # state ---------------------------------------------------------------

    def has_state(self) -> bool:
        return self.state_file.exists()

    def _load(self) -> dict[str, Any]:
        """The state file, each part's pid, start and restarts as its
        supervisor last wrote them (a restarted part has a new pid)."""
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"runtime": "local", "parts": {}, "supervisors": []}
        for entry in state["parts"].values():
            status = processes.supervised(Path(entry["log"]))
            if status is not None and status["pid"]:
                entry.update(
                    pid=status["pid"],
                    started_at=status["started_at"],
                    restarts=status["restarts"],
                    supervision=status["state"],
                    supervisor=status["supervisor"],
                )
        return state

    def _note_supervisors(self, state: dict[str, Any]) -> None:
        """The supervisors this shopctl started join those of the state."""
        state["supervisors"] = sorted({*state.get("supervisors", []), *self.stack.supervisors})

    def _save(self, state: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)  # never half-written

    def _alive(self, name: str, entry: dict[str, Any]) -> bool:
        return processes.pid_runs(int(entry["pid"]), part(replica_of(name)[0]).app)

    # commands ------------------------------------------------------------

    def up(self, progress: Progress, build: bool = False) -> UpReport:
        started = time.monotonic()
        self.notes: list[str] = []
        state = self._load()
        alive = {n for n, e in state["parts"].items() if self._alive(n, e)}
        urls = {"gateway": self.stack.url("gateway")}
        if frontend.served_dir() is not None:
            urls["frontend"] = self.stack.url("gateway") + "/"
        if alive >= {name for name, _ in self.stack.launches()}:
            for name in self.infrastructure() + [p.name for p in PARTS]:
                progress(name, "ready", "already running")
            self._up_prometheus(state, progress, urls)
            return UpReport(self.name, True, time.monotonic() - started, urls, self.notes)

        check_ports_distinct(self.settings.ports())
        self.notes = [frontend.ensure_built()]
        urls["frontend"] = self.stack.url("gateway") + "/"
        progress("rabbitmq", "starting", self.settings.broker_url.split("@")[-1])
        check_broker(self.settings.broker_url)
        progress("rabbitmq", "external", "reachable")
        progress("postgresql", "starting", "creating databases")
        created = self.stack.create_databases()
        budget = self.stack.connection_budget()
        progress(
            "postgresql",
            "external",
            (f"{len(created)} databases created; " if created else "")
            + f"{budget.total} of {budget.max_connections} connections",
        )
        ports = self.settings.ports()
        check_ports_free({n: port for n, port in ports.items() if n not in alive})

        missing = {t.name for n, t in self.stack.launches() if n not in alive}
        for name, _ in self.stack.launches():
            if name not in alive:
                progress(name, "starting", "importing")  # the fork server's imports
        self.stack.start_parts(
            [p for p in PARTS if p.name in missing], truncate_logs=True, skip=alive
        )
        for name, running in self.stack.running.items():
            state["parts"][name] = {
                "pid": running.process.pid,
                "instance": running.instance,
                "port": running.port,
                "started_at": time.time(),
                "log": str(running.log_path),
            }
            progress(name, "starting", f"pid {running.process.pid}")
        self._note_supervisors(state)
        state["started_at"] = state.get("started_at") or time.time()
        state["budget"] = self.stack.connection_budget().describe()
        self._save(state)  # `down` can clean up even if the wait below fails
        try:
            self.stack.wait_ready(
                self.settings.ready_timeout_s,
                on_ready=lambda running: progress(running.name, "ready", running.url),
            )
        except ShopError:
            for name, running in self.stack.running.items():
                if not processes.url_ready(running.url, running.service, running.instance):
                    progress(name, "failed", "")
            raise
        self._up_prometheus(state, progress, urls)
        return UpReport(self.name, False, time.monotonic() - started, urls, self.notes)

    # Prometheus ------------------------------------------------------------

    @property
    def prometheus(self) -> LocalPrometheus:
        return LocalPrometheus(self.home / "prometheus", self.settings.prometheus_port)

    def _up_prometheus(
        self, state: dict[str, Any], progress: Progress, urls: dict[str, str]
    ) -> None:
        """Prometheus beside the stack, scraping every process and RabbitMQ;
        the stack runs without it when it cannot start (said in a note)."""
        if not self.settings.prometheus:
            return
        server = self.prometheus
        entry = state.get("prometheus")
        if entry and processes.pid_alive(int(entry["pid"])) and server.ready():
            progress("prometheus", "ready", "already running")
            urls["prometheus"] = server.url
            return
        if prometheus.binary() is None:
            self.notes.append(
                "Prometheus is not installed: each part serves /metrics "
                "(scripts/sandbox installs it: apt-get install prometheus)"
            )
            return
        progress("prometheus", "starting", f"port {server.port}")
        targets: dict[str, list[str]] = {}
        for name, port in self.settings.ports().items():
            targets.setdefault(replica_of(name)[0], []).append(f"{self.stack.config.host}:{port}")
        config = prometheus.configuration(targets, broker_url=self.settings.broker_url)
        try:
            check_ports_free({"prometheus": server.port})
            pid = server.start(config, marker=self.stack.config.marker)
        except ShopError as exc:
            progress("prometheus", "failed", exc.message)
            self.notes.append(f"Prometheus did not start: {exc.message} ({exc.hint or ''})")
            return
        state["prometheus"] = {"pid": pid, "port": server.port, "started_at": time.time()}
        self._save(state)
        progress("prometheus", "ready", server.url)
        urls["prometheus"] = server.url

    def prometheus_url(self) -> str | None:
        """The running Prometheus of this sandbox, if any."""
        entry = self._load().get("prometheus")
        if not entry or not processes.pid_alive(int(entry["pid"])):
            return None
        return f"http://{self.stack.config.host}:{entry['port']}"

    def down(self, volumes: bool = False) -> list[str]:
        """Stop every process of this sandbox: those in the state file and
        any other that carries its marker (a lost or overwritten state)."""
        state = self._load()
        stopped = []
        running = [name for name, entry in state["parts"].items() if self._alive(name, entry)]
        # the supervisors first: each stops its parts, all at once
        for pid in state.get("supervisors", []):
            processes.stop_supervisor(int(pid), self.settings.stop_timeout_s + 10)
        for name in running:
            entry = state["parts"][name]
            if self._alive(name, entry):
                processes.stop_pid(int(entry["pid"]), self.settings.stop_timeout_s)
            stopped.append(name)
        strays = processes.marked_processes(self.stack.config.marker)
        for pid in sorted(strays, key=lambda pid: strays[pid] != "supervisor"):
            processes.stop_pid(pid, self.settings.stop_timeout_s + 10)
            stopped.append(f"{strays[pid]} (pid {pid}, not in the state file)")
        prometheus_entry = state.get("prometheus")
        if prometheus_entry and processes.pid_alive(int(prometheus_entry["pid"])):
            self.prometheus.stop(int(prometheus_entry["pid"]))
            stopped.append("prometheus")
        if volumes:
            self.stack.drop_databases()
            stopped.append("databases")
            self.prometheus.forget()
            shutil.rmtree(self.home / "spans", ignore_errors=True)
            stopped.append("the metrics and the spans")
            from shopctl import amqp  # aio-pika: loaded by the commands that talk to the broker

            queues, exchanges = amqp.stack_topology({**os.environ, **self.stack.config.extra_env})
            dropped = asyncio.run(amqp.drop_topology(self.settings.broker_url, queues, exchanges))
            stopped.append(f"{dropped} queues and the exchanges on the broker")
        self.state_file.unlink(missing_ok=True)
        return stopped

    def spans_dir(self) -> Path | None:
        return self.home / "spans"

    def broker_url(self) -> str:
        return self.settings.broker_url

    def budget_line(self) -> str:
        """The connection budget the running stack was given, if any."""
        return str(self._load().get("budget", ""))

    def status(self) -> list[PartStatus]:
        state = self._load()
        result = []
        names = [p.name for p in PARTS]
        names += sorted(n for n in state["parts"] if n not in names)  # replicas
        for name in names:
            entry = state["parts"].get(name)
            if entry is None:
                port = self.settings.port(name)
                result.append(PartStatus(name, self.name, "stopped", "-", port, None))
                continue
            alive = self._alive(name, entry)
            restarts = int(entry.get("restarts", 0))
            if alive and processes.pid_paused(int(entry["pid"])):
                result.append(
                    PartStatus(
                        name,
                        self.name,
                        "paused",
                        "-",
                        int(entry["port"]),
                        float(entry["started_at"]),
                        restarts,
                    )
                )
                continue
            url = f"http://{self.stack.config.host}:{entry['port']}"
            ready = alive and processes.url_ready(url, replica_of(name)[0], entry.get("instance"))
            health = "ready" if ready else ("not ready" if alive else "-")
            if alive:
                state_word = "running"
            elif entry.get("supervision") == "restarting" and self._supervised(entry):
                state_word = "restarting"
            else:
                state_word = "stopped" if entry.get("stopped") else "exited"
            result.append(
                PartStatus(
                    name,
                    self.name,
                    state_word,
                    health,
                    int(entry["port"]),
                    float(entry["started_at"]) if alive else None,
                    restarts,
                )
            )
        return result

    @staticmethod
    def _supervised(entry: dict[str, Any]) -> bool:
        return "supervisor" in entry and processes.supervisor_runs(int(entry["supervisor"]))

    def _entry(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        part(name)  # a clear error for an unknown part
        entry: dict[str, Any] | None = state["parts"].get(name)
        if entry is None:
            raise ShopError(f"{name} is not running under the local runtime", hint="shopctl up")
        return entry

    def restart(self, name: str, progress: Progress) -> None:
        self.stop_part(name, progress)
        self.start_part(name, progress)

    def stop_part(self, name: str, progress: Progress) -> None:
        """Stop a part by hand: its supervisor leaves it down until started."""
        state = self._load()
        entry = self._entry(state, name)
        if self._alive(name, entry):
            progress(name, "starting", "stopping")
        processes.stop_supervised(
            Path(entry["log"]), int(entry["pid"]), self.settings.stop_timeout_s
        )
        entry["stopped"] = True  # by hand: status says stopped, not exited
        self._save(state)

    def start_part(self, name: str, progress: Progress) -> None:
        """Start a part that is not running (a running one is left as it is):
        its supervisor forks it again, or a new fork server when none is left."""
        state = self._load()
        entry = self._entry(state, name)
        if self._alive(name, entry):
            return
        pid = processes.start_supervised(Path(entry["log"]))
        if pid is None:
            others = {n for n, _ in self.stack.launches()} - {name}
            self.stack.start_parts([part(name)], skip=others)
            running = self.stack.running[name]
            entry.update(pid=running.process.pid, instance=running.instance, started_at=time.time())
            self._note_supervisors(state)
        else:
            entry.update(pid=pid, started_at=time.time())
        entry.pop("stopped", None)
        self._save(state)
        progress(name, "starting", f"pid {entry['pid']}")
        log = Path(entry["log"])
        started = processes.RunningPart(
            name,
            int(entry["port"]),
            processes.ForkedProcess(int(entry["pid"]), processes.exit_file(log)),
            log,
            str(entry.get("instance", "")),
            replica_of(name)[0],
        )
        processes.wait_ready([started], self.settings.ready_timeout_s)
        progress(name, "ready", started.url)

    def pause_part(self, name: str) -> None:
        """Freeze the part (SIGSTOP): its sockets stay open, nothing moves."""
        self._signal(name, signal.SIGSTOP)

    def resume_part(self, name: str) -> None:
        self._signal(name, signal.SIGCONT)

    def _signal(self, name: str, signum: int) -> None:
        entry = self._entry(self._load(), name)
        if not self._alive(name, entry):
            raise ShopError(f"{name} is not running", hint=f"shopctl restart {name}")
        processes.signal_group(int(entry["pid"]), signum)

    def inflight(self, name: str) -> dict[str, Any] | None:
        url = f"{self.stack.url(part(name).name)}/inflight"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                found: dict[str, Any] = json.loads(answer.read())
                return found
        except (OSError, ValueError):
            return None

    def query(self, name: str, statement: str) -> list[list[str | None]]:
        import psycopg

        url = _url_with(self.stack.config.pg_admin_url, None, self.stack.database_name(part(name)))
        try:
            with psycopg.connect(url, connect_timeout=5) as db:
                db.execute("SET TRANSACTION READ ONLY")
                rows = db.execute(statement).fetchall()
        except psycopg.Error as exc:
            raise ShopError(f"{name}'s database: {str(exc).strip().splitlines()[0]}") from None
        return [[None if v is None else str(v) for v in row] for row in rows]

    def restart_broker(self, progress: Progress) -> None:
        """The local runtime shares the machine's RabbitMQ: stop its app and
        start it again (every client of that broker sees the restart)."""
        progress("rabbitmq", "starting", "stop_app")
        _rabbitmqctl("stop_app")
        progress("rabbitmq", "starting", "start_app")
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
        progress("rabbitmq", "ready", "")

    def logs(self, parts: list[str], follow: bool) -> Iterator[LogLine]:
        names = parts or [p.name for p in PARTS]
        for name in names:
            part(name)
        files = {name: self.log_dir / f"{name}.log" for name in names}
        return follow_files(files) if follow else iter(read_files(files))


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShopError(f"rabbitmqctl {args[0]} could not run: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise ShopError(
            f"rabbitmqctl {args[0]} failed: {reason[-1] if reason else done.returncode}",
            hint="restarting the machine's broker needs the rights to run rabbitmqctl",
        )


def check_broker(broker_url: str) -> None:
    """One sentence when the broker's port does not answer."""
    parsed = urlsplit(broker_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5672
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        raise ShopError(
            f"RabbitMQ cannot be reached at {host}:{port}",
            hint="start it (rabbitmq-server -detached) or check shopctl doctor",
        ) from None
