"""The shipping service: shipments of paid orders."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings

from . import api, handlers

MIGRATIONS = Path(__file__).parent / "migrations"


class ShippingSettings(ServiceSettings):
    service_name: str = "shipping"


def create_app(settings: ShippingSettings | None = None) -> FastAPI:
    settings = settings or ShippingSettings()
    runtime = ServiceRuntime(
        settings,
        migrations_dir=MIGRATIONS,
        subscriptions=handlers.Handlers().subscriptions(),
        retired=handlers.RETIRED,
    )
    return create_service_app(runtime, title="shop shipping", routers=[api.router])
