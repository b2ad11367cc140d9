"""Shared request-body vocabulary: SKUs, currencies, quantities."""

from typing import Annotated

from pydantic import Field

Sku = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Quantity = Annotated[int, Field(gt=0, le=1000)]
Cents = Annotated[int, Field(ge=0, le=100_000_000)]
