"""The request path, checked before anything routes on it.

The route and its policy are chosen on the path's segments, and the
upstream URL is built from them; an HTTP client that resolved dot segments
afterwards (httpx does) would send ``/api/products/../../metrics`` to a
service's own /metrics. So any path holding a dot segment, an encoded
slash or backslash, or a control character, plainly or percent-encoded
(once or more), is refused with 404 before routing."""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import ApiError

_MAX_DECODES = 4


def path_problem(raw_path: bytes) -> str | None:
    """Why ``raw_path`` (as sent, percent-encoded) is refused, or None."""
    text = raw_path.decode("latin-1")
    for segment in text.split("/"):
        decoded = segment
        for _ in range(_MAX_DECODES):
            if decoded in (".", ".."):
                return "dot segment"
            if "/" in decoded or "\\" in decoded:
                return "encoded slash"
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
                return "control character"
            once_more = unquote(decoded, errors="strict") if "%" in decoded else decoded
            if once_more == decoded:
                break
            decoded = once_more
    return None


def upstream_path(segments: list[str]) -> str:
    """The path for the upstream request, each (validated) segment encoded
    on its own so nothing in it can act as a separator."""
    return "/".join(quote(segment, safe="") for segment in segments)


class RejectUnsafePaths:
    """ASGI middleware in front of the gateway's routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            problem = path_problem(raw.split(b"?", 1)[0])
            if problem is not None:
                refused = ApiError(404, f"no such path ({problem})")
                await refused.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
