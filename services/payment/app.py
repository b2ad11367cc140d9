"""The payment service: charges against the simulated card processor."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.common.runtime import ServiceRuntime, create_service_app
from services.common.settings import ServiceSettings

from . import api
from .handlers import RETIRED, Handlers

MIGRATIONS = Path(__file__).parent / "migrations"


class PaymentSettings(ServiceSettings):
    service_name: str = "payment"
    processor_attempts: int = Field(default=3, ge=1, le=10)
    processor_backoff_s: float = Field(default=0.05, ge=0)


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    settings = settings or PaymentSettings()
    handlers = Handlers(settings.processor_attempts, settings.processor_backoff_s)
    runtime = ServiceRuntime(
        settings,
        migrations_dir=MIGRATIONS,
        subscriptions=handlers.subscriptions(),
        retired=RETIRED,
    )
    return create_service_app(runtime, title="shop payment", routers=[api.router])
