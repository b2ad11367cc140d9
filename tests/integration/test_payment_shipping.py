"""Payment charges from StockReserved and shipping ships from PaymentSucceeded
alone (the events carry the amount, the card and the address), and a cancel
of the same order, before or at the same moment, is never overtaken."""

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
    PaymentDetails,
    PaymentSucceeded,
    ShippingAddress,
    StockReserved,
    new_event,
)
from services.common.outbox import unit_of_work
from services.payment import handlers as payment
from services.shipping import handlers as shipping
from tests.conftest import RUN_ID, _admin, _pg_url

ADDRESS = ShippingAddress(name="Ada", line1="1 Way", city="London", postal_code="N1", country="GB")


def _database(service: str, package: Path):
    name = f"shoptest_{RUN_ID}_{service}_rules"
    _admin(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    migrations.upgrade(url, package.parent / "migrations")
    return name, url


@pytest.fixture(scope="module")
def databases():
    made = {
        service: _database(service, Path(module.__file__))
        for service, module in (("payment", payment), ("shipping", shipping))
    }
    yield {service: url for service, (_, url) in made.items()}
    for name, _ in made.values():
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engines(databases, settings):
    engines = {
        service: create_engine(settings.model_copy(update={"database_url": url}))
        for service, url in databases.items()
    }
    yield engines
    for engine in engines.values():
        await engine.dispose()


async def handle(engine, handler, data):
    """One handler in its own transaction, as the consumer runner runs it;
    returns the events it emitted."""
    cause = new_event(data, source="test", correlation_id=str(data.order_id))
    async with unit_of_work(engine, "test", cause=cause) as uow:
        await handler(cause, uow)
    return uow.emitted


def reserved(order_id: uuid.UUID, card: str = "tok_visa", total: int = 1234) -> StockReserved:
    return StockReserved(
        order_id=order_id,
        items=[LineItem(sku="SKU-1", quantity=2, unit_price_cents=617)],
        customer_id=uuid.UUID(int=7),
        total_cents=total,
        currency="EUR",
        payment=PaymentDetails(card_token=card),
        shipping_address=ADDRESS,
    )


def cancelled(order_id: uuid.UUID) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, reason="timeout")


CHARGE = payment.Handlers(processor_attempts=1, processor_backoff_s=0).charge
CANCEL_PAYMENT = payment.Handlers(1, 0).order_cancelled
SHIPPING = shipping.Handlers()


async def rows_of(engine, table, columns, order_id):
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(f"SELECT {columns} FROM {table} WHERE order_id = :o"), {"o": order_id}
        )
        return [tuple(row) for row in rows]


async def payments_of(engine, order_id):
    return await rows_of(engine, "payments", "status, amount_cents, customer_id", order_id)


async def test_payment_charges_from_stock_reserved_without_the_checkout(engines):
    order_id = uuid.uuid4()
    [event] = await handle(engines["payment"], CHARGE, reserved(order_id))
    assert event.type == "PaymentSucceeded"
    assert event.data.amount_cents == 1234
    assert event.data.customer_id == uuid.UUID(int=7)
    assert event.data.shipping_address == ADDRESS
    assert await payments_of(engines["payment"], order_id) == [("CAPTURED", 1234, uuid.UUID(int=7))]
    # A redelivery that got past the inbox charges nothing more.
    assert await handle(engines["payment"], CHARGE, reserved(order_id)) == []


async def test_payment_declines_a_declined_card(engines):
    order_id = uuid.uuid4()
    [event] = await handle(engines["payment"], CHARGE, reserved(order_id, "tok_chargeDeclined"))
    assert (event.type, event.data.reason) == ("PaymentFailed", "card_declined")
    assert [row[0] for row in await payments_of(engines["payment"], order_id)] == ["DECLINED"]


async def test_a_cancel_before_stock_reserved_stops_the_charge(engines):
    order_id = uuid.uuid4()
    await handle(engines["payment"], CANCEL_PAYMENT, cancelled(order_id))
    assert await handle(engines["payment"], CHARGE, reserved(order_id)) == []
    assert await payments_of(engines["payment"], order_id) == []


async def test_a_charge_and_a_cancel_at_once_leave_no_capture_of_a_cancelled_order(engines):
    """The charge takes the intent's row lock before it charges, so the
    cancel either comes first (no charge) or waits and refunds."""
    engine = engines["payment"]
    orders = [uuid.uuid4() for _ in range(20)]
    await asyncio.gather(
        *(handle(engine, CHARGE, reserved(o)) for o in orders),
        *(handle(engine, CANCEL_PAYMENT, cancelled(o)) for o in orders),
    )
    for order_id in orders:
        statuses = [row[0] for row in await payments_of(engine, order_id)]
        assert statuses in ([], ["REFUNDED"]), (order_id, statuses)


def paid(order_id: uuid.UUID) -> PaymentSucceeded:
    return PaymentSucceeded(
        order_id=order_id,
        payment_id=uuid.uuid4(),
        amount_cents=1234,
        currency="EUR",
        customer_id=uuid.UUID(int=7),
        shipping_address=ADDRESS,
    )


async def shipments_of(engine, order_id):
    return await rows_of(engine, "shipments", "status, address, customer_id", order_id)


async def test_shipping_ships_from_payment_succeeded_without_the_checkout(engines):
    order_id = uuid.uuid4()
    [event] = await handle(engines["shipping"], SHIPPING.create_shipment, paid(order_id))
    assert event.type == "ShippingCreated"
    [(status, address, customer)] = await shipments_of(engines["shipping"], order_id)
    assert (status, address, customer) == ("CREATED", ADDRESS.model_dump(), uuid.UUID(int=7))
    assert await handle(engines["shipping"], SHIPPING.create_shipment, paid(order_id)) == []


async def test_a_cancel_before_payment_succeeded_stops_the_shipment(engines):
    order_id = uuid.uuid4()
    await handle(engines["shipping"], SHIPPING.order_cancelled, cancelled(order_id))
    assert await handle(engines["shipping"], SHIPPING.create_shipment, paid(order_id)) == []
    assert await shipments_of(engines["shipping"], order_id) == []


async def test_a_stock_reserved_made_to_the_api_table_alone_is_declined(engines):
    """API.md lists order_id and items for StockReserved; one without the
    carried amount and card (injected by hand) ends the saga as a decline."""
    order_id = uuid.uuid4()
    bare = StockReserved(order_id=order_id, items=reserved(order_id).items)
    [event] = await handle(engines["payment"], CHARGE, bare)
    assert (event.type, event.data.reason) == ("PaymentFailed", "no_payment_details")
    assert await payments_of(engines["payment"], order_id) == []


async def test_a_payment_succeeded_without_an_address_ships_nothing(engines):
    order_id = uuid.uuid4()
    bare = PaymentSucceeded(
        order_id=order_id, payment_id=uuid.uuid4(), amount_cents=1, currency="EUR"
    )
    with pytest.raises(shipping.NoDestination):
        await handle(engines["shipping"], SHIPPING.create_shipment, bare)
    assert await shipments_of(engines["shipping"], order_id) == []
