"""The built frontend (frontend/dist) at /, beside the API: its files as
they are, and index.html for every other page path so the browser's router
takes over (a reload of /orders/<id> works)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from services.common.errors import ApiError

# the built assets' names carry their content hash: cached for good
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_REVALIDATE = {"Cache-Control": "no-cache"}


def frontend_router(directory: Path) -> APIRouter:
    root = directory.resolve()
    index = root / "index.html"
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    @router.get("/{path:path}")
    async def page(path: str = "") -> Response:
        if path.startswith("api/"):
            raise ApiError(404, f"no API route /{path}")
        if path:
            candidate = (root / path).resolve()
            if candidate.is_file() and root in candidate.parents:
                headers = _IMMUTABLE if candidate.parent.name == "assets" else _REVALIDATE
                return FileResponse(candidate, headers=headers)
            if "." in path.rsplit("/", 1)[-1]:
                raise ApiError(404, f"no file /{path}")
        return FileResponse(index, headers=_REVALIDATE)

    return router
