"""One error shape for every HTTP answer: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The one error shape of API.md."""

    error: ErrorDetail


# Documented on every route of every app (create_service_app), so the
# OpenAPI says what an error really looks like (not FastAPI's default 422).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "refused: the error says why"},
    503: {"model": ErrorBody, "description": "busy or unavailable; see Retry-After"},
}


class ApiError(Exception):
    """An expected failure of a request, answered with its status and code."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.retry_after = retry_after  # seconds, for 429 and 503

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        return JSONResponse(
            error_body(self.status, self.message, self.code),
            status_code=self.status,
            headers=headers,
        )


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def error_body(status: int, message: str, code: str | None = None) -> dict[str, dict[str, str]]:
    return {"error": {"code": code or _CODES.get(status, "error"), "message": message}}


RETRY_AFTER_S = 1


def unavailable(message: str) -> JSONResponse:
    """503 with Retry-After and the error shape."""
    return ApiError(503, message, retry_after=RETRY_AFTER_S).response()


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the one error shape; never a stack trace in a body."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(
            error_body(exc.status_code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{location}: {error.get('msg')}" if location else str(error.get("msg")))
        return JSONResponse(error_body(422, "; ".join(parts) or "invalid request"), status_code=422)

    @app.exception_handler(sa_exc.TimeoutError)
    async def pool_exhausted(request: Request, exc: sa_exc.TimeoutError) -> JSONResponse:
        # Every pooled connection is busy for longer than the pool timeout:
        # overload, which the caller can retry, not a fault of ours.
        log.warning("no database connection free for %s %s", request.method, request.url.path)
        return unavailable("the service is busy; try again shortly")

    @app.exception_handler(sa_exc.OperationalError)
    async def database_unavailable(request: Request, exc: sa_exc.OperationalError) -> JSONResponse:
        # The server refused a connection (too many clients, restarting) or
        # cancelled a statement past its timeout.
        log.warning(
            "database unavailable for %s %s: %s",
            request.method,
            request.url.path,
            str(exc.orig).splitlines()[0] if exc.orig else exc,
        )
        return unavailable("the service's database is unavailable; try again shortly")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal error", "internal"), status_code=500)
