"""The built frontend (frontend/dist) at /, beside the API: its files
(gzipped once each for clients that take it), and index.html for every
other page path so the browser's router takes over (a reload of
/orders/<id> works)."""

from __future__ import annotations

import gzip
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from services.common.errors import ApiError

# the built assets' names carry their content hash: cached for good
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_REVALIDATE = {"Cache-Control": "no-cache"}


_COMPRESSIBLE = {".js", ".css", ".html", ".svg", ".json", ".map", ".txt"}


def frontend_router(directory: Path) -> APIRouter:
    root = directory.resolve()
    index = root / "index.html"
    router = APIRouter(include_in_schema=False)
    gzipped: dict[Path, tuple[float, bytes]] = {}  # compressed once per file version

    def send(file: Path, request: Request, headers: dict[str, str]) -> Response:
        accepts = "gzip" in request.headers.get("accept-encoding", "")
        if not accepts or file.suffix not in _COMPRESSIBLE:
            return FileResponse(file, headers=headers)
        mtime = file.stat().st_mtime
        cached = gzipped.get(file)
        if cached is None or cached[0] != mtime:
            cached = gzipped[file] = (mtime, gzip.compress(file.read_bytes(), 6))
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return Response(
            cached[1],
            media_type=media_type,
            headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )

    @router.get("/")
    @router.get("/{path:path}")
    async def page(request: Request, path: str = "") -> Response:
        if path.startswith("api/"):
            raise ApiError(404, f"no API route /{path}")
        if path:
            candidate = (root / path).resolve()
            if candidate.is_file() and root in candidate.parents:
                headers = _IMMUTABLE if candidate.parent.name == "assets" else _REVALIDATE
                return send(candidate, request, headers)
            if "." in path.rsplit("/", 1)[-1]:
                raise ApiError(404, f"no file /{path}")
        return send(index, request, _REVALIDATE)

    return router
