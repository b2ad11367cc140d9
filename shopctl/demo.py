"""The demo catalog: a dozen products with stock, loaded through the gateway
as an admin would (so ProductCreated flows and inventory creates the stock)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from shopctl.errors import ShopError

DEMO_PRODUCTS: tuple[tuple[str, str, str, int, int], ...] = (
    # sku, name, description, price_cents, initial_stock
    ("MUG-001", "Saga mug", "Holds coffee through every compensation.", 1200, 50),
    ("TEE-002", "Outbox t-shirt", "Transactional cotton, published exactly once.", 2400, 40),
    ("CAP-003", "Idempotent cap", "Wear it twice, it counts once.", 1800, 30),
    ("BAG-004", "Dead-letter tote", "Carries what nobody else would.", 1500, 25),
    ("PEN-005", "Causation pen", "Every line traces back to the one before.", 350, 200),
    ("NTB-006", "Event log notebook", "Append-only, 200 pages.", 900, 80),
    ("STK-007", "Quorum sticker pack", "Three of five must agree.", 400, 150),
    ("HOD-008", "Backpressure hoodie", "Warm, with a bounded prefetch.", 4900, 15),
    ("SCK-009", "Retry socks", "Growing delay between each wash.", 1100, 60),
    ("BTL-010", "Circuit-breaker bottle", "Opens on failure, closes on recovery.", 2200, 20),
    ("PST-011", "Choreography poster", "No conductor needed.", 1600, 35),
    ("KEY-012", "Tombstone keyring", "Remembers what came too early.", 700, 3),
)


@dataclass(frozen=True)
class SeedResult:
    created: list[str]
    existing: list[str]


def load_demo_catalog(gateway: str, email: str, password: str) -> SeedResult:
    """Create the demo products; ones that exist already are left alone."""
    try:
        with httpx.Client(base_url=gateway, timeout=10) as client:
            login = client.post("/api/auth/token", json={"email": email, "password": password})
            if login.status_code != 200:
                raise ShopError(
                    f"the gateway refused the admin login for {email} ({login.status_code})",
                    hint="pass --admin-email/--admin-password or set SHOP_ADMIN_EMAIL/PASSWORD",
                )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            result = SeedResult([], [])
            for sku, name, description, price, stock in DEMO_PRODUCTS:
                answer = client.post(
                    "/api/products",
                    headers=headers,
                    json={
                        "sku": sku,
                        "name": name,
                        "description": description,
                        "price_cents": price,
                        "currency": "EUR",
                        "initial_stock": stock,
                    },
                )
                if answer.status_code == 201:
                    result.created.append(sku)
                elif answer.status_code == 409:
                    result.existing.append(sku)
                else:
                    raise ShopError(f"creating {sku} failed ({answer.status_code}): {answer.text}")
            return result
    except httpx.TransportError as exc:
        raise ShopError(
            f"the gateway at {gateway} cannot be reached ({type(exc).__name__})",
            hint="start the stack first: shopctl up",
        ) from None
