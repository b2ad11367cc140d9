"""Request dependencies shared by the services' routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .runtime import ServiceRuntime


async def runtime(request: Request) -> ServiceRuntime:
    value: ServiceRuntime = request.app.state.runtime
    return value


Runtime = Annotated[ServiceRuntime, Depends(runtime)]
