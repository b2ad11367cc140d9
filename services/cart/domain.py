"""Cart rules: one currency per cart, bounded lines, a checkout that happens
once. The rules know no HTTP: a refusal is a CartRefused, which the routes
answer with its status (api.py); prices come from prices.py."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Driver, Prepared
from services.common.identity import Caller
from services.common.outbox import UnitOfWork

from .models import cart_items, carts

MAX_LINES = 50
MAX_QUANTITY = 1000


class CartRefused(Exception):
    """A request the cart's rules refuse; ``kind`` says how."""

    kind = "invalid"  # not_found, conflict, invalid


class NoSuchCart(CartRefused):
    """Not there, or another customer's (the same answer, A1)."""

    kind = "not_found"


class CartClosed(CartRefused):
    """Checked out already, in another currency, or empty at the checkout."""

    kind = "conflict"


class CartLine(BaseModel):
    sku: str
    quantity: int
    unit_price_cents: int


class Cart(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    status: str
    items: list[CartLine]
    total_cents: int
    currency: str


# Built once, run on the driver's connection: building a statement and its
# cache key on every request cost more than running it (docs/performance-journal.md).
_select_cart = sa.select(carts).where(carts.c.id == sa.bindparam("cart_id"))
_LOAD = Prepared(_select_cart)
_LOAD_LOCKED = Prepared(_select_cart.with_for_update())
_LINES = Prepared(
    sa.select(cart_items.c.sku, cart_items.c.quantity, cart_items.c.unit_price_cents)
    .where(cart_items.c.cart_id == sa.bindparam("cart_id"))
    .order_by(cart_items.c.position)
)


async def load(db: Driver, cart_id: uuid.UUID, caller: Caller, *, lock: bool) -> Any:
    """The caller's cart row; another customer's cart is 'not found' (A1)."""
    row = (await db.run(_LOAD_LOCKED if lock else _LOAD, {"cart_id": cart_id})).first()
    if row is None or row.customer_id != caller.customer_id:
        raise NoSuchCart(f"cart {cart_id} not found")
    return row


async def load_open(db: Driver, cart_id: uuid.UUID, caller: Caller) -> Any:
    row = await load(db, cart_id, caller, lock=True)
    if row.status != "OPEN":
        raise CartClosed(f"cart {cart_id} is already checked out")
    return row


async def lines(db: Driver, cart_id: uuid.UUID) -> list[CartLine]:
    rows = await db.run(_LINES, {"cart_id": cart_id})
    return [CartLine(sku=sku, quantity=n, unit_price_cents=price) for sku, n, price in rows]


async def view(db: Driver, row: Any) -> Cart:
    items = await lines(db, row.id)
    return Cart(
        id=row.id,
        customer_id=row.customer_id,
        status=row.status,
        items=items,
        total_cents=sum(i.quantity * i.unit_price_cents for i in items),
        currency=row.currency,
    )


async def set_line(
    uow: UnitOfWork,
    cart: Any,
    sku: str,
    quantity: int,
    price: int,
    currency: str,
    *,
    add: bool,
) -> None:
    existing = await lines(uow.db, cart.id)
    if currency != cart.currency:
        if existing:
            raise CartClosed(f"cart is in {cart.currency}; {sku} is priced in {currency}")
        await uow.conn.execute(
            carts.update().where(carts.c.id == cart.id).values(currency=currency)
        )
    current = next((line.quantity for line in existing if line.sku == sku), 0)
    if not current and len(existing) >= MAX_LINES:
        raise CartRefused(f"a cart holds at most {MAX_LINES} different products")
    new_quantity = current + quantity if add else quantity
    if new_quantity > MAX_QUANTITY:
        raise CartRefused(f"at most {MAX_QUANTITY} of one product per cart")
    await uow.conn.execute(
        insert(cart_items)
        .values(cart_id=cart.id, sku=sku, quantity=new_quantity, unit_price_cents=price)
        .on_conflict_do_update(
            index_elements=[cart_items.c.cart_id, cart_items.c.sku],
            set_={"quantity": new_quantity, "unit_price_cents": price},
        )
    )
    await touch(uow.conn, cart.id)


async def touch(conn: AsyncConnection, cart_id: uuid.UUID) -> None:
    await conn.execute(carts.update().where(carts.c.id == cart_id).values(updated_at=sa.func.now()))
