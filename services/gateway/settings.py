"""Gateway settings: tokens, the admin account, where the services are."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import ServiceSettings

SANDBOX_JWT_SECRET = "shop-sandbox-jwt-secret-do-not-use-in-production"


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    jwt_secret: str = Field(default=SANDBOX_JWT_SECRET, min_length=32)
    jwt_issuer: str = "shop"
    jwt_ttl_s: int = Field(default=3600, ge=60)
    admin_email: str = "admin@shop.local"
    admin_password: str = "admin"
    catalog_url: str = "http://127.0.0.1:8101"
    cart_url: str = "http://127.0.0.1:8102"
    order_url: str = "http://127.0.0.1:8103"
    inventory_url: str = "http://127.0.0.1:8104"
    payment_url: str = "http://127.0.0.1:8105"
    shipping_url: str = "http://127.0.0.1:8106"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    login_failures_per_minute: int = Field(default=10, ge=1)
    upstream_timeout_s: float = Field(default=10.0, gt=0)
    # Admission (L2): requests at work at once, how many may wait, how long.
    max_in_flight: int = Field(default=64, ge=1)
    max_queued: int = Field(default=256, ge=0)
    admission_wait_s: float = Field(default=2.0, gt=0)
    password_hashes_at_once: int = Field(default=2, ge=1)
    frontend_dir: Path | None = Field(
        default=None, description="the built frontend served at / (none: the API only)"
    )
    stream_linger_s: float = Field(
        default=1.5, ge=0, description="how long a stream stays open after the terminal event"
    )
    stream_replay_s: int = Field(
        default=10,
        ge=1,
        le=110,
        description="how far back the live stream reads when the first watcher comes",
    )
    stream_idle_s: float = Field(
        default=30.0, ge=0, description="how long it reads on after the last watcher left"
    )
    stream_order_wait_s: float = Field(
        default=3.0, ge=0, description="how long the stream waits for a just-placed order"
    )

    def upstreams(self) -> dict[str, str]:
        """First path segment after /api/ -> the service that owns it."""
        return {
            "products": self.catalog_url,
            "inventory": self.inventory_url,
            "carts": self.cart_url,
            "orders": self.order_url,
            "payments": self.payment_url,
            "shipments": self.shipping_url,
        }
