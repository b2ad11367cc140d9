"""The inventory service: stock levels and reservations (no oversell, ever)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings

from . import api, handlers

MIGRATIONS = Path(__file__).parent / "migrations"


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    runtime = ServiceRuntime(
        settings, migrations_dir=MIGRATIONS, subscriptions=handlers.Handlers().subscriptions()
    )
    return create_service_app(runtime, title="shop inventory", routers=[api.router])
