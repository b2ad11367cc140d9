"""/healthz, /readyz, /inflight and /metrics for any service app.

The probes (/healthz, /readyz) are on the service's port. /inflight and
/metrics are internal: in sandbox mode on the same port (Prometheus and
`shopctl why` ask there), outside it on the internal port alone
(SHOP_INTERNAL_PORT), which the world is not given."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics


def probe_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        """Alive: the process answers, and says who it is."""
        return {"status": "ok", **request.app.state.runtime.identity()}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready: database and broker reachable, relay and consumers running.
        Names the part and its instance, so a supervisor that asks a port
        knows whom it asked (a reused port answers as someone else)."""
        runtime = request.app.state.runtime
        checks = await runtime.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", **runtime.identity(), "checks": checks},
            status_code=200 if ready else 503,
        )

    return router


def internal_router() -> APIRouter:
    router = APIRouter(tags=["internal"], include_in_schema=False)

    @router.get("/inflight")
    async def inflight(request: Request) -> dict[str, Any]:
        """What this process works on now: the messages its handlers hold
        (queue, event, saga, attempt, for how long, the fault acting on
        each) and, in sandbox mode, the faults it obeys. Internal: the
        gateway does not route it; `shopctl why` and the TUI read it."""
        runtime = request.app.state.runtime
        return {**runtime.identity(), **runtime.inflight()}

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus' text format, or OpenMetrics (with the exemplars that
        carry trace ids) when the scraper asks for it."""
        runtime = request.app.state.runtime
        await runtime.before_scrape()
        accept = request.headers.get("accept", "")
        if "application/openmetrics-text" in accept:
            body = openmetrics.generate_latest(runtime.metrics.registry)
            return Response(body, media_type=openmetrics.CONTENT_TYPE_LATEST)
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
