"""One rule for all text from outside: no NUL characters, no lone
surrogates (JSON can escape them, UTF-8 and PostgreSQL cannot hold them).

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

from pydantic import BaseModel, ValidationInfo, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

NUL_MESSAGE = "text may not contain NUL (\\u0000) characters"
# Validation context of a model read from JSON whose every string is known
# to be storable text (``json_text_is_clean``): no walk of its strings.
TEXT_CHECKED = {"text_checked": True}
SURROGATE_MESSAGE = "text may not contain unpaired surrogates (\\ud800-\\udfff)"


def text_problem(value: Any) -> str | None:
    """Why some string in ``value`` (keys included) is not storable text."""
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, dict):
        items: Any = (*value.keys(), *value.values())
    elif isinstance(value, list | tuple):
        items = value
    else:
        return None
    # Strings checked here and scalars passed over without a call each: a
    # model built in code (an event a handler emits) is walked once per
    # message, most of its values UUIDs, numbers and models.
    for item in items:
        if isinstance(item, str):
            problem = _string_problem(item)
        elif isinstance(item, dict | list | tuple):
            problem = text_problem(item)
        else:
            continue
        if problem:
            return problem
    return None


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return NUL_MESSAGE
    if value.isascii():
        return None  # no surrogate can be there: spares encoding a copy
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def json_text_is_clean(body: bytes) -> bool:
    """Whether every string of a JSON document orjson has parsed is storable
    text, known from its bytes alone: orjson refuses lone surrogates and raw
    control characters, so only an escaped NUL could be left. (False may
    also mean a literal backslash before "u0000": then walk the strings.)"""
    return b"\\u0000" not in body


class InputModel(BaseModel):
    """Base of every model that reads what comes from outside."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_bad_text(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is TEXT_CHECKED:
            return data
        problem = text_problem(data)
        if problem:
            raise ValueError(problem)
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
