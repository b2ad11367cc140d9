"""Gateway settings: tokens, the admin account, where the services are."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from services.common.settings import ServiceSettings

SANDBOX_JWT_SECRET = "shop-sandbox-jwt-secret-do-not-use-in-production"
SANDBOX_ADMIN_PASSWORD = "admin"
# Passwords nobody should keep outside the sandbox (the sandbox's own first).
KNOWN_DEFAULT_PASSWORDS = frozenset(
    {SANDBOX_ADMIN_PASSWORD, "password", "changeme", "change-me", "admin123", "secret", "shop"}
)
MIN_SECRET_BYTES = 32
MIN_ADMIN_PASSWORD = 12


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    jwt_secret: str = Field(
        default=SANDBOX_JWT_SECRET,
        description="signs the tokens: at least 32 random bytes outside sandbox mode",
    )
    jwt_previous_secrets: str = Field(
        default="",
        description="comma-separated secrets still accepted (not used to sign) during a rotation",
    )
    jwt_issuer: str = "shop"
    jwt_audience: str = "shop-api"
    jwt_ttl_s: int = Field(default=3600, ge=60)
    admin_email: str = "admin@shop.local"
    admin_password: str = SANDBOX_ADMIN_PASSWORD
    catalog_url: str = "http://127.0.0.1:8101"
    cart_url: str = "http://127.0.0.1:8102"
    order_url: str = "http://127.0.0.1:8103"
    inventory_url: str = "http://127.0.0.1:8104"
    payment_url: str = "http://127.0.0.1:8105"
    shipping_url: str = "http://127.0.0.1:8106"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    login_failures_per_minute: int = Field(
        default=5, ge=1, description="failed logins an account may have in a moving minute"
    )
    login_failures_per_address_per_minute: int = Field(
        default=100, ge=1, description="failed logins a client address may have in a minute"
    )
    login_throttle_namespace: str = Field(
        default="shop-login", description="the throttle's key prefix (two shops, one Redis)"
    )
    redis_url: str = Field(
        default="",
        description="redis://host:port/db: the login throttle's counts, shared by every "
        "gateway process (empty: this process's memory)",
    )
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
    stream_max_per_customer: int = Field(
        default=4, ge=1, description="order streams one customer may have open at once"
    )
    stream_max_open: int = Field(
        default=256, ge=1, description="order streams open at once on this gateway"
    )
    stream_max_age_s: float = Field(
        default=600.0, gt=0, description="a stream ends after this long, its order over or not"
    )
    stream_order_wait_s: float = Field(
        default=3.0, ge=0, description="how long the stream waits for a just-placed order"
    )

    @field_validator("jwt_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # SHOP_JWT_SECRET= (as the compose file passes an unset one): the default
        return SANDBOX_JWT_SECRET if value == "" else value

    def unsafe_outside_sandbox(self) -> str | None:
        """Why this gateway must not start, in one sentence naming the
        variable; None when it may. Sandbox mode keeps its defaults (they
        are said in `shopctl status`, `doctor` and `up`)."""
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            return (
                f"SHOP_JWT_SECRET is {len(self.jwt_secret.encode())} bytes; it needs at least "
                f"{MIN_SECRET_BYTES} random bytes (python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        if self.fault_injection:
            return None
        if self.jwt_secret == SANDBOX_JWT_SECRET:
            return (
                "SHOP_JWT_SECRET is not set: outside sandbox mode the gateway signs tokens "
                f"with a secret of your own, at least {MIN_SECRET_BYTES} random bytes "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.admin_password.lower() in KNOWN_DEFAULT_PASSWORDS:
            return (
                "SHOP_ADMIN_PASSWORD is not set or is a known default: outside sandbox mode "
                f"set the admin's password to one of your own, {MIN_ADMIN_PASSWORD} characters "
                "or more"
            )
        if len(self.admin_password) < MIN_ADMIN_PASSWORD:
            return f"SHOP_ADMIN_PASSWORD is shorter than {MIN_ADMIN_PASSWORD} characters"
        return None

    def verification_secrets(self) -> list[str]:
        """The signing secret, then those a rotation still accepts."""
        previous = [s.strip() for s in self.jwt_previous_secrets.split(",") if s.strip()]
        return [self.jwt_secret, *previous]

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
