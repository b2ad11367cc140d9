"""Inventory's rules against a real database: S2 (compensations twice or too
early), S3 (concurrent reservations) and S4 (multi-item all or nothing)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.common import migrations
from services.common.db import create_engine
from services.common.events import (
    LineItem,
    OrderCancelled,
    OrderCreated,
    PaymentDetails,
    PaymentFailed,
    ShippingAddress,
    ShippingCreated,
    new_event,
)
from services.common.outbox import unit_of_work
from services.inventory import handlers
from tests.conftest import RUN_ID, _admin, _pg_url

MIGRATIONS = Path(handlers.__file__).parent / "migrations"
INVENTORY = handlers.Handlers()
ADDRESS = ShippingAddress(name="A", line1="B", city="C", postal_code="1", country="GB")


@pytest.fixture(scope="module")
def inventory_url():
    name = f"shoptest_{RUN_ID}_inventory_rules"
    _admin(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    migrations.upgrade(url, MIGRATIONS)
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(inventory_url, settings):
    engine = create_engine(settings.model_copy(update={"database_url": inventory_url}))
    yield engine
    await engine.dispose()


async def handle(engine, handler, data):
    """Run one handler in its own transaction, as the consumer runner does;
    returns the types of the events it emitted."""
    cause = new_event(data, source="test", correlation_id=str(data.order_id))
    async with unit_of_work(engine, "inventory", cause=cause) as uow:
        await handler(cause, uow)
    return [e.type for e in uow.emitted]


async def stock(engine, sku):
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT available, reserved, shipped FROM stock WHERE sku = :s"), {"s": sku}
            )
        ).one()
    return tuple(row)


async def new_sku(engine, quantity):
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(engine, "test") as uow:
        await uow.conn.execute(
            sa.text("INSERT INTO stock VALUES (:s, :q, 0, 0, now())"), {"s": sku, "q": quantity}
        )
    return sku


def order(*lines):
    return OrderCreated(
        order_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        items=[LineItem(sku=s, quantity=q) for s, q in lines],
        total_cents=0,
        currency="EUR",
        payment=PaymentDetails(card_token="tok_visa"),
        shipping_address=ADDRESS,
    )


async def test_multi_item_order_is_all_or_nothing(engine):
    plenty, scarce = await new_sku(engine, 10), await new_sku(engine, 1)
    emitted = await handle(engine, INVENTORY.reserve_stock, order((plenty, 3), (scarce, 2)))
    assert emitted == ["StockReservationFailed"]
    assert await stock(engine, plenty) == (10, 0, 0)  # the first line was given back
    assert await stock(engine, scarce) == (1, 0, 0)

    emitted = await handle(engine, INVENTORY.reserve_stock, order((scarce, 1), (plenty, 3)))
    assert emitted == ["StockReserved"]
    assert await stock(engine, plenty) == (7, 3, 0)
    assert await stock(engine, scarce) == (0, 1, 0)


async def test_release_twice_gives_back_once(engine):
    sku = await new_sku(engine, 5)
    created = order((sku, 2))
    await handle(engine, INVENTORY.reserve_stock, created)
    failed = PaymentFailed(order_id=created.order_id, reason="card_declined")
    assert await handle(engine, INVENTORY.release_stock, failed) == ["StockReleased"]
    cancelled = OrderCancelled(order_id=created.order_id, reason="payment_declined")
    assert await handle(engine, INVENTORY.release_stock, cancelled) == []
    assert await handle(engine, INVENTORY.release_stock, failed) == []
    assert await stock(engine, sku) == (5, 0, 0)


async def test_release_before_the_reservation_leaves_a_tombstone(engine):
    sku = await new_sku(engine, 5)
    created = order((sku, 2))
    cancelled = OrderCancelled(order_id=created.order_id, reason="timeout")
    assert await handle(engine, INVENTORY.release_stock, cancelled) == []
    # The late OrderCreated reserves nothing and says nothing.
    assert await handle(engine, INVENTORY.reserve_stock, created) == []
    assert await stock(engine, sku) == (5, 0, 0)


async def test_cancel_after_shipping_brings_the_stock_back(engine):
    sku = await new_sku(engine, 4)
    created = order((sku, 3))
    await handle(engine, INVENTORY.reserve_stock, created)
    shipped = ShippingCreated(
        order_id=created.order_id, shipment_id=uuid.uuid4(), tracking_number="SHP1"
    )
    await handle(engine, INVENTORY.ship_stock, shipped)
    assert await stock(engine, sku) == (1, 0, 3)
    cancelled = OrderCancelled(order_id=created.order_id, reason="timeout")
    assert await handle(engine, INVENTORY.release_stock, cancelled) == ["StockReleased"]
    assert await stock(engine, sku) == (4, 0, 0)
    await handle(engine, INVENTORY.ship_stock, shipped)  # a redelivered ShippingCreated
    assert await stock(engine, sku) == (4, 0, 0)


async def test_concurrent_reservations_never_oversell(engine):
    sku = await new_sku(engine, 7)
    results = await asyncio.gather(
        *(handle(engine, INVENTORY.reserve_stock, order((sku, 1))) for _ in range(25))
    )
    assert sorted(r[0] for r in results).count("StockReserved") == 7
    assert await stock(engine, sku) == (0, 7, 0)


async def test_reservation_and_release_racing_for_one_order_are_serialised(engine):
    for _ in range(10):
        sku = await new_sku(engine, 3)
        created = order((sku, 1))
        cancelled = OrderCancelled(order_id=created.order_id, reason="timeout")
        await asyncio.gather(
            handle(engine, INVENTORY.reserve_stock, created),
            handle(engine, INVENTORY.release_stock, cancelled),
        )
        # Whichever came first, nothing stays reserved for a cancelled order.
        assert await stock(engine, sku) == (3, 0, 0)
