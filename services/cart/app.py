"""The cart service: carts, their items, and the checkout."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings
from services.common.upstream import Upstreams

from . import api, domain, handlers, prices

MIGRATIONS = Path(__file__).parent / "migrations"


class CartSettings(ServiceSettings):
    service_name: str = "cart"
    catalog_url: str = "http://127.0.0.1:8101"


def create_app(settings: CartSettings | None = None) -> FastAPI:
    settings = settings or CartSettings()
    runtime = ServiceRuntime(
        settings, migrations_dir=MIGRATIONS, subscriptions=handlers.Handlers().subscriptions()
    )
    app = create_service_app(runtime, title="shop cart", routers=[api.router])
    app.add_exception_handler(domain.CartRefused, api.refused)
    # aiohttp through the shared client: httpx's pool cost a request about
    # 1.7 ms of CPU (docs/performance-journal.md), and a cart is filled a line at a time
    catalog = prices.Catalog(settings.catalog_url, Upstreams(timeout_s=5.0, connect_s=2.0))
    app.state.catalog = catalog
    runtime.close_on_stop(catalog.http.close)
    return app
