"""Cart routes: a customer's carts, their items and the checkout."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.common.db import Driver, Prepared
from services.common.errors import ApiError, not_found
from services.common.events import CartCheckedOut, LineItem, PaymentDetails, ShippingAddress
from services.common.http import Runtime
from services.common.identity import CurrentCaller
from services.common.money import Quantity, Sku
from services.common.text import InputModel

from . import domain, prices
from .domain import Cart
from .models import cart_items, carts

log = logging.getLogger(__name__)

router = APIRouter()
_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422}


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """A refusal of the cart's rules, answered in the one error shape."""
    assert isinstance(exc, domain.CartRefused)
    return ApiError(_STATUS[exc.kind], str(exc)).response()


async def catalog_client(request: Request) -> prices.Catalog:
    client: prices.Catalog = request.app.state.catalog
    return client


Catalog = Annotated[prices.Catalog, Depends(catalog_client)]


class ItemIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    quantity: Quantity


class QuantityIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Quantity


class PaymentIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    card_token: str = Field(min_length=1, max_length=100)


class AddressIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class CheckoutIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    payment: PaymentIn
    shipping_address: AddressIn


class CheckoutAccepted(BaseModel):
    order_id: uuid.UUID


@router.post("/carts", status_code=201)
async def create_cart(runtime: Runtime, caller: CurrentCaller) -> Cart:
    cart_id = uuid.uuid4()
    async with runtime.unit_of_work() as uow:
        await uow.conn.execute(
            carts.insert().values(
                id=cart_id, customer_id=caller.customer_id, status="OPEN", currency="EUR"
            )
        )
        row = await domain.load(uow.db, cart_id, caller, lock=False)
        return await domain.view(uow.db, row)


@router.get("/carts/{cart_id}")
async def get_cart(cart_id: uuid.UUID, runtime: Runtime, caller: CurrentCaller) -> Cart:
    async with runtime.engine.connect() as conn:
        db = await Driver.of(conn)
        row = await domain.load(db, cart_id, caller, lock=False)
        return await domain.view(db, row)


@router.post("/carts/{cart_id}/items")
async def add_item(
    cart_id: uuid.UUID, body: ItemIn, runtime: Runtime, caller: CurrentCaller, catalog: Catalog
) -> Cart:
    """Add to the cart's line for the SKU (created if new), at today's price."""
    price, currency = await prices.price_of(catalog, body.sku)  # before the transaction
    async with runtime.unit_of_work() as uow:
        row = await domain.load_open(uow.db, cart_id, caller)
        await domain.set_line(uow, row, body.sku, body.quantity, price, currency, add=True)
        return await domain.view(uow.db, await domain.load(uow.db, cart_id, caller, lock=False))


@router.put("/carts/{cart_id}/items/{sku}")
async def set_item(
    cart_id: uuid.UUID,
    sku: str,
    body: QuantityIn,
    runtime: Runtime,
    caller: CurrentCaller,
    catalog: Catalog,
) -> Cart:
    price, currency = await prices.price_of(catalog, sku)
    async with runtime.unit_of_work() as uow:
        row = await domain.load_open(uow.db, cart_id, caller)
        await domain.set_line(uow, row, sku, body.quantity, price, currency, add=False)
        return await domain.view(uow.db, await domain.load(uow.db, cart_id, caller, lock=False))


@router.delete("/carts/{cart_id}/items/{sku}")
async def remove_item(
    cart_id: uuid.UUID, sku: str, runtime: Runtime, caller: CurrentCaller
) -> Cart:
    async with runtime.unit_of_work() as uow:
        row = await domain.load_open(uow.db, cart_id, caller)
        removed = await uow.conn.execute(
            cart_items.delete().where(cart_items.c.cart_id == cart_id, cart_items.c.sku == sku)
        )
        if removed.rowcount == 0:
            raise not_found(f"{sku} in cart {cart_id}")
        await domain.touch(uow.conn, cart_id)
        return await domain.view(uow.db, row)


# Locks, checks and closes the caller's open cart in one statement; the
# lines are read after it, in a statement of their own, so they include any
# line added by a transaction it waited for (READ COMMITTED: a snapshot a
# statement).
_CHECK_OUT = Prepared(
    carts.update()
    .where(
        carts.c.id == sa.bindparam("cart_id"),
        carts.c.customer_id == sa.bindparam("customer_id"),
        carts.c.status == "OPEN",
    )
    .values(status="CHECKED_OUT", order_id=sa.bindparam("new_order_id"), updated_at=sa.func.now())
    .returning(carts.c.currency)
)


@router.post("/carts/{cart_id}/checkout", status_code=202)
async def checkout(
    cart_id: uuid.UUID, body: CheckoutIn, runtime: Runtime, caller: CurrentCaller
) -> CheckoutAccepted:
    """Close the cart and start the saga: the order id is minted here and is
    the correlation id of every event that follows."""
    order_id = uuid.uuid4()
    async with runtime.unit_of_work() as uow:
        row = (
            await uow.db.run(
                _CHECK_OUT,
                {"cart_id": cart_id, "customer_id": caller.customer_id, "new_order_id": order_id},
            )
        ).first()
        if row is None:  # not the caller's (404) or not open (409)
            await domain.load_open(uow.db, cart_id, caller)
            raise domain.CartClosed(f"cart {cart_id} is already checked out")
        items = await domain.lines(uow.db, cart_id)
        if not items:  # the rollback reopens it
            raise domain.CartClosed(f"cart {cart_id} is empty")
        uow.emit(
            CartCheckedOut(
                order_id=order_id,
                cart_id=cart_id,
                customer_id=caller.customer_id,
                items=[LineItem(**i.model_dump()) for i in items],
                total_cents=sum(i.quantity * i.unit_price_cents for i in items),
                currency=row.currency,
                payment=PaymentDetails(**body.payment.model_dump()),
                shipping_address=ShippingAddress(**body.shipping_address.model_dump()),
            ),
            correlation_id=order_id,
            subject=str(order_id),
        )
    log.info("cart %s checked out: order %s", cart_id, order_id, extra={"order": order_id})
    return CheckoutAccepted(order_id=order_id)
