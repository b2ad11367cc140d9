"""Catalog routes: search and read products; admins create them."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from services.common.errors import ApiError, not_found
from services.common.events import ProductCreated
from services.common.http import Runtime
from services.common.identity import AdminCaller
from services.common.money import Cents, Currency, Sku
from services.common.text import InputModel

from .models import products

router = APIRouter()


class ProductIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    price_cents: Cents
    currency: Currency
    initial_stock: int = Field(default=0, ge=0, le=1_000_000)


class Product(BaseModel):
    sku: str
    name: str
    description: str
    price_cents: int
    currency: str


class ProductPage(BaseModel):
    items: list[Product]
    total: int


_COLUMNS = (
    products.c.sku,
    products.c.name,
    products.c.description,
    products.c.price_cents,
    products.c.currency,
)


@router.get("/products")
async def list_products(
    runtime: Runtime,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ProductPage:
    condition: sa.ColumnElement[bool] = sa.true()
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        condition = sa.or_(products.c.name.ilike(pattern), products.c.sku.ilike(pattern))
    async with runtime.engine.connect() as conn:
        total = (
            await conn.execute(sa.select(sa.func.count()).select_from(products).where(condition))
        ).scalar_one()
        rows = await conn.execute(
            sa.select(*_COLUMNS)
            .where(condition)
            .order_by(products.c.sku)
            .limit(limit)
            .offset(offset)
        )
        items = [Product(**row._mapping) for row in rows]
    return ProductPage(items=items, total=total)


@router.get("/products/{sku}")
async def get_product(sku: str, runtime: Runtime) -> Product:
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(products.c.sku == sku))).first()
    if row is None:
        raise not_found(f"product {sku}")
    return Product(**row._mapping)


@router.post("/products", status_code=201)
async def create_product(body: ProductIn, runtime: Runtime, _: AdminCaller) -> Product:
    """Create a product; inventory creates its stock from ProductCreated."""
    product = Product(**body.model_dump(exclude={"initial_stock"}))
    try:
        async with runtime.unit_of_work() as uow:
            await uow.conn.execute(products.insert().values(**product.model_dump()))
            uow.emit(
                ProductCreated(**body.model_dump()),
                correlation_id=f"product:{body.sku}",
                subject=body.sku,
            )
    except IntegrityError:
        raise ApiError(409, f"product {body.sku} already exists") from None
    return product
