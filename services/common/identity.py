"""Who is calling: the gateway checks the token once and passes the caller on
in two headers. Services are reachable only from the gateway's network; the
gateway strips these headers from outside requests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header

from .errors import ApiError

CUSTOMER_HEADER = "X-Shop-Customer-Id"
ROLE_HEADER = "X-Shop-Role"

Role = Literal["customer", "admin"]


@dataclass(frozen=True)
class Caller:
    customer_id: uuid.UUID
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def current_caller(
    customer_id: Annotated[str | None, Header(alias=CUSTOMER_HEADER)] = None,
    role: Annotated[str | None, Header(alias=ROLE_HEADER)] = None,
) -> Caller:
    if not customer_id:
        raise ApiError(401, "authentication required")
    try:
        parsed = uuid.UUID(customer_id)
    except ValueError:
        raise ApiError(401, "authentication required") from None
    return Caller(parsed, "admin" if role == "admin" else "customer")


async def admin_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    if not caller.is_admin:
        raise ApiError(403, "this needs an admin account")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]
