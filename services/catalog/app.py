"""The catalog service: products and prices."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings

from . import api, handlers

MIGRATIONS = Path(__file__).parent / "migrations"


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
    runtime = ServiceRuntime(
        settings, migrations_dir=MIGRATIONS, subscriptions=handlers.Handlers().subscriptions()
    )
    return create_service_app(runtime, title="shop catalog", routers=[api.router])
