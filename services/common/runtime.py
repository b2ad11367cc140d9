"""Wiring in one place: what a service process holds while it runs (engine,
broker, relay, consumers, metrics), started and stopped by the app lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from . import logs, migrations, tracing
from .broker import Broker
from .consumer import ConsumerRunner, Subscription
from .db import create_engine, libpq_dsn
from .diagnostics import install_stack_dumps
from .errors import ERROR_RESPONSES, install_error_handlers
from .events import Envelope
from .faults import FaultSwitchboard
from .metrics import HttpMetrics, Metrics
from .outbox import OutboxRelay, UnitOfWork, unit_of_work
from .retention import prune_forever
from .settings import ServiceSettings
from .text import RejectNulInput

log = logging.getLogger(__name__)


class ServiceRuntime:
    """The running parts of one service process."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations_dir: str | Path | None = None,
        subscriptions: Sequence[Subscription] = (),
        retired: Sequence[str] = (),
        background: Sequence[Callable[[ServiceRuntime], Awaitable[None]]] = (),
    ) -> None:
        self.settings = settings
        # Given by the supervisor that started this process, else our own.
        self.instance_id = settings.instance_id or uuid.uuid4().hex[:12]
        logs.identify(settings.service_name, self.instance_id)
        self.spans = tracing.setup_tracing(
            settings.service_name, self.instance_id, settings.spans_dir
        )
        # the messaging tables' retention runs in every service alike
        self._background_factories = [prune_messaging_tables, *background]
        self._background: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._scrapes: list[Callable[[], Awaitable[None]]] = []
        self._reports: dict[str, Callable[[], Any]] = {}
        self.migrations_dir = migrations_dir
        self.metrics = Metrics(settings.service_name)
        self.engine: AsyncEngine = create_engine(settings)
        tracing.instrument_engine(self.engine)
        self.broker = Broker(settings)
        # Sandbox mode only: outside it nothing listens for fault switches.
        self.faults = FaultSwitchboard(settings.service_name) if settings.fault_injection else None
        self.relay = OutboxRelay(self.engine, self.broker, settings, self.metrics, self.faults)
        self.consumers = ConsumerRunner(
            settings,
            self.engine,
            self.broker,
            subscriptions,
            relay=self.relay,
            metrics=self.metrics,
            faults=self.faults,
            retired=retired,
        )

    def identity(self) -> dict[str, Any]:
        """Who answers: the part, the instance the supervisor named, the pid."""
        return {
            "service": self.settings.service_name,
            "instance": self.instance_id,
            "pid": os.getpid(),
        }

    def inflight(self) -> dict[str, Any]:
        return {
            "working": [w.describe() for w in self.consumers.working.values()],
            "batches": self.consumers.batches(),
            "faults": self.faults.describe() if self.faults is not None else None,
            **{name: read() for name, read in self._reports.items()},
        }

    def report(self, name: str, read: Callable[[], Any]) -> None:
        """Answer /inflight with ``name``: ``read()`` too (the order
        service's saga mode, which `shopctl status` shows)."""
        self._reports[name] = read

    def on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` before each /metrics answer (a gauge read from the database)."""
        self._scrapes.append(refresh)

    async def before_scrape(self) -> None:
        for refresh in self._scrapes:
            try:
                async with asyncio.timeout(2):
                    await refresh()
            except Exception as exc:  # the other figures are still worth serving
                log.warning("a metric could not be read: %s: %s", type(exc).__name__, exc)

    def close_on_stop(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Register a resource of the service (an HTTP client, say) to close last."""
        self._closers.append(closer)

    async def start(self) -> None:
        """Migrate, connect, start the relay and the consumers. Raises when
        the database or the broker cannot be reached."""
        await wait_for_database(self.settings)
        if self.migrations_dir is not None:
            # Synchronously: nothing is served yet, and it spares the thread
            # handoff (one CI run saw a startup stall right after this step).
            migrations.upgrade(
                self.settings.database_url,
                self.migrations_dir,
                application_name=f"{self.settings.service_name}-migrate",
            )
        await self.broker.connect()
        if self.faults is not None:
            await self.faults.listen(self.broker)
        self.relay.start()
        await self.consumers.start()
        self._background = [
            asyncio.create_task(_supervised(job, self), name=getattr(job, "__name__", "job"))
            for job in self._background_factories
        ]

    async def stop(self) -> None:
        """Graceful: consumers finish in-flight handlers, then the relay
        stops, then connections close."""
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background = []
        await self.consumers.stop()
        await self.relay.stop()
        await self.broker.close()
        await self.engine.dispose()
        for closer in self._closers:
            with contextlib.suppress(Exception):
                await closer()
        tracing.flush()

    @asynccontextmanager
    async def unit_of_work(self, cause: Envelope[Any] | None = None) -> AsyncIterator[UnitOfWork]:
        """A transaction for request handlers; its events go to the relay at commit."""
        async with unit_of_work(
            self.engine, self.settings.service_name, cause=cause, relay=self.relay
        ) as uow:
            yield uow

    async def readiness(self) -> dict[str, Any]:
        """Checks behind /readyz: database, broker, relay, consumers."""
        checks: dict[str, Any] = {}
        try:
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        checks["broker"] = "ok" if self.broker.is_connected else "error: disconnected"
        checks["relay"] = "ok" if self.relay.running else "error: stopped"
        if self.consumers.subscriptions:
            try:
                async with asyncio.timeout(2):
                    counts = await self.consumers.consumer_counts()
                idle = [q for q, n in counts.items() if n == 0]
                checks["consumers"] = "ok" if not idle else f"error: no consumer on {idle}"
            except Exception as exc:
                checks["consumers"] = f"error: {type(exc).__name__}"
        return checks


async def wait_for_database(settings: ServiceSettings) -> None:
    """Until the database accepts a connection, for at most
    ``db_startup_timeout_s``: a service may start beside its database (the
    docker runtime starts them together) and must not die of being early."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.db_startup_timeout_s
    while True:
        try:
            connection = await psycopg.AsyncConnection.connect(
                libpq_dsn(settings.database_url), connect_timeout=2
            )
            await connection.close()
            return
        except psycopg.OperationalError as exc:
            if loop.time() >= deadline:
                raise
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            log.info("database not reachable yet (%s); waiting", reason)
            await asyncio.sleep(0.25)


async def prune_messaging_tables(rt: ServiceRuntime) -> None:
    await prune_forever(rt.engine, rt.settings)


async def _supervised(job: Callable[[ServiceRuntime], Awaitable[None]], rt: ServiceRuntime) -> None:
    """Run a background job forever; a crash is logged and the job restarted."""
    while True:
        try:
            await job(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s failed; restarting", getattr(job, "__name__", job))
        await asyncio.sleep(1.0)


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    **app_options: Any,
) -> FastAPI:
    """A FastAPI app whose lifespan starts and stops ``runtime``, with
    /healthz and /readyz next to the service's own routers, and /inflight
    and /metrics beside them in sandbox mode, on the internal port outside
    it (health.py)."""
    from .health import internal_router, probe_router

    sandbox = runtime.settings.fault_injection
    internal = None if sandbox else InternalServer(internal_app(runtime), runtime.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_stack_dumps()
        try:
            await runtime.start()
            if internal is not None:
                await internal.start()
        except Exception as exc:
            # One line a person can act on, before the framework's traceback.
            log.error(
                "%s cannot start: %s: %s",
                runtime.settings.service_name,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            raise
        try:
            yield
        finally:
            if internal is not None:
                with contextlib.suppress(Exception):
                    await internal.stop()
            with contextlib.suppress(Exception):
                await runtime.stop()

    app = FastAPI(
        title=title,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # FastAPI's own telemetry off: our server span (tracing.ServerSpans)
        # is the one a request gets; FastAPI's would add a second, and three
        # more (dependencies, endpoint, serialization) to every request
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        **app_options,
    )
    app.add_middleware(RejectNulInput)
    app.add_middleware(HttpMetrics, metrics=runtime.metrics)
    app.state.runtime = runtime
    tracing.instrument_app(app)
    install_error_handlers(app)
    app.include_router(probe_router())
    if sandbox:
        app.include_router(internal_router())
    for router in routers:
        app.include_router(router)
    return app


def internal_app(runtime: ServiceRuntime) -> FastAPI:
    """What the internal port serves: the probes, /inflight and /metrics."""
    from .health import internal_router, probe_router

    app = FastAPI(
        title=f"{runtime.settings.service_name} internal",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime
    app.include_router(probe_router())
    app.include_router(internal_router())
    return app


class InternalServer:
    """The internal port's server, in the service's own event loop: started
    after the runtime, stopped before it. The service's main server handles
    the process's signals; this one leaves them alone."""

    def __init__(self, app: FastAPI, settings: ServiceSettings) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
                return contextlib.nullcontext()

        config = uvicorn.Config(
            app,
            host=settings.internal_host,
            port=settings.internal_port,
            lifespan="off",
            log_config=None,
            access_log=False,
        )
        self.server = Quiet(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(), name="internal port")
        while not self.server.started:
            if self.task.done():  # the port taken: its error, as the start's
                self.task.result()
                raise RuntimeError(
                    f"the internal port {self.server.config.port} cannot be served "
                    "(SHOP_INTERNAL_PORT)"
                )
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
