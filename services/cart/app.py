"""The cart service: carts, their items, and the checkout."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings

from . import api, handlers

MIGRATIONS = Path(__file__).parent / "migrations"


# idle connections to the catalog; less than its server keeps them (shopctl.stack)
CATALOG_KEEPALIVE_S = 5.0


class CartSettings(ServiceSettings):
    service_name: str = "cart"
    catalog_url: str = "http://127.0.0.1:8101"


def create_app(settings: CartSettings | None = None) -> FastAPI:
    settings = settings or CartSettings()
    runtime = ServiceRuntime(
        settings, migrations_dir=MIGRATIONS, subscriptions=handlers.SUBSCRIPTIONS
    )
    app = create_service_app(runtime, title="shop cart", routers=[api.router])
    app.state.catalog = httpx.AsyncClient(
        base_url=settings.catalog_url,
        timeout=5.0,
        limits=httpx.Limits(keepalive_expiry=CATALOG_KEEPALIVE_S),
    )
    runtime.close_on_stop(app.state.catalog.aclose)
    return app
