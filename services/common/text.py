"""One rule for all text from outside: no NUL characters.

PostgreSQL cannot store U+0000 in text. Let through, a NUL in a product
name or a search answered 500, and one in a shipping address was accepted
at checkout and then failed in shipping on every delivery, leaving the
order PAID and the card charged. So every model that reads input (request
bodies and events) derives from ``InputModel``, which refuses NUL anywhere
in what it is given; query strings and paths get the same rule at the edge
of every app (``RejectNulInput``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

NUL_MESSAGE = "text may not contain NUL (\\u0000) characters"


def holds_nul(value: Any) -> bool:
    """Whether a NUL sits in any string of ``value`` (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False


class InputModel(BaseModel):
    """Base of every model that reads what comes from outside."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        if holds_nul(data):
            raise ValueError(NUL_MESSAGE)
        return data


class RejectNulInput:
    """ASGI middleware: 422 for a NUL in the path or the query string, plain
    or percent-encoded, before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
            if b"\x00" in unquote_to_bytes(raw) or "\x00" in scope["path"]:
                from .errors import ApiError

                await ApiError(422, NUL_MESSAGE).response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
