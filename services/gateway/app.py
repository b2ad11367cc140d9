"""The gateway: the one public HTTP entry (auth, routing, the live stream)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from services.common.admission import Admission, AdmissionMiddleware
from services.common.runtime import ServiceRuntime, create_service_app
from services.common.upstream import Upstreams

from . import api, handlers
from .frontend import frontend_router
from .openapi import GatewayOpenAPI
from .paths import RejectUnsafePaths
from .settings import SANDBOX_JWT_SECRET, GatewaySettings
from .stream import SagaBroadcaster, StreamSlots
from .throttle import LoginThrottle

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def admitted_through_limit(path: str) -> bool:
    """API calls take a slot; health, metrics and the long-lived order
    streams (which would hold one for minutes) do not."""
    return path.startswith("/api/") and not path.endswith("/stream")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    unsafe = settings.unsafe_outside_sandbox()
    if unsafe is not None:  # one sentence, in the part's log and on its way out
        log.critical("gateway not started: %s", unsafe)
        raise SystemExit(f"gateway not started: {unsafe}")
    if settings.fault_injection:
        log.warning(
            "gateway: sandbox mode: fault switches on%s",
            ", the sandbox's own JWT secret and admin password"
            if settings.jwt_secret == SANDBOX_JWT_SECRET
            else "",
        )

    async def broadcast_saga_events(runtime: ServiceRuntime) -> None:
        broadcaster: SagaBroadcaster = app.state.broadcaster
        await broadcaster.start()
        try:
            await asyncio.Event().wait()  # it reads on the broker's connection, while watched
        finally:
            await broadcaster.stop()

    runtime = ServiceRuntime(
        settings,
        migrations_dir=MIGRATIONS,
        subscriptions=handlers.Handlers().subscriptions(),
        background=[broadcast_saga_events],
    )
    # The document is the gateway's and the services' together (openapi.py),
    # served by api.py in place of FastAPI's own.
    app = create_service_app(
        runtime,
        title="shop gateway",
        routers=[api.router],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    if settings.frontend_dir is not None and (settings.frontend_dir / "index.html").is_file():
        app.include_router(frontend_router(settings.frontend_dir))  # last: it takes any path
    app.state.openapi = GatewayOpenAPI(app, settings)
    app.state.http = Upstreams(settings.upstream_timeout_s, connect_s=2.0, limit=200)
    runtime.close_on_stop(app.state.http.close)
    app.state.broadcaster = SagaBroadcaster(
        runtime.broker, replay_s=settings.stream_replay_s, idle_s=settings.stream_idle_s
    )
    app.state.streams = StreamSlots(
        settings.stream_max_per_customer, settings.stream_max_open, runtime.metrics.registry
    )
    app.state.login_throttle = LoginThrottle(
        settings.login_failures_per_minute,
        settings.login_failures_per_address_per_minute,
        settings.redis_url,
        namespace=settings.login_throttle_namespace,
    )
    app.state.hashing = Admission(
        "sign-in", settings.password_hashes_at_once, settings.max_queued, settings.admission_wait_s
    )
    app.state.admission = Admission(
        "the gateway", settings.max_in_flight, settings.max_queued, settings.admission_wait_s
    )
    app.add_middleware(
        AdmissionMiddleware, admission=app.state.admission, admits=admitted_through_limit
    )
    app.add_middleware(RejectUnsafePaths)  # added last: runs first
    return app
