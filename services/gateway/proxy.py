"""Forwarding /api/<resource>/... to the service that owns the resource, with
one pooled HTTP client and the caller's identity checked once, here."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request, Response

from services.common.errors import ApiError
from services.common.identity import CUSTOMER_HEADER, ROLE_HEADER, Caller
from services.common.upstream import UpstreamBusy, Upstreams, UpstreamTimeout, UpstreamUnavailable

from .auth import caller_from_token
from .paths import upstream_path
from .settings import GatewaySettings

log = logging.getLogger(__name__)

_FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "traceparent", "x-request-id")
_FORWARDED_RESPONSE_HEADERS = ("content-type", "location", "retry-after")


def route_policy(method: str, segments: list[str]) -> str:
    """'public', 'admin' or 'customer' for a request under /api/."""
    resource = segments[0]
    if resource in ("products", "inventory") and method == "GET":
        return "public"
    if resource == "products" and method == "POST" and len(segments) == 1:
        return "admin"
    if resource == "inventory" and method == "POST" and segments[-1] == "restock":
        return "admin"
    return "customer"


def identity_headers(caller: Caller | None) -> dict[str, str]:
    if caller is None:
        return {}
    return {CUSTOMER_HEADER: str(caller.customer_id), ROLE_HEADER: caller.role}


def authorize(settings: GatewaySettings, request: Request, policy: str) -> Caller | None:
    caller = caller_from_token(settings, request.headers.get("authorization"))
    if policy == "public":
        return caller
    if caller is None:
        raise ApiError(401, "authentication required")
    if policy == "admin" and not caller.is_admin:
        raise ApiError(403, "this needs an admin account")
    return caller


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body over {limit} bytes")
    return bytes(body)


async def forward(
    client: Upstreams,
    settings: GatewaySettings,
    request: Request,
    path: str,
) -> Response:
    segments = [s for s in path.split("/") if s]
    upstream = settings.upstreams().get(segments[0]) if segments else None
    if upstream is None:
        raise ApiError(404, f"no API at /api/{path}")
    caller = authorize(settings, request, route_policy(request.method, segments))
    body = await read_body(request, settings.max_body_bytes)
    headers: dict[str, Any] = {
        name: value
        for name in _FORWARDED_REQUEST_HEADERS
        if (value := request.headers.get(name)) is not None
    }
    # Identity headers from outside are never trusted: only the token's.
    headers.update(identity_headers(caller))
    service = segments[0]
    try:
        answer = await client.request(
            request.method,
            f"{upstream}/{upstream_path(segments)}",
            query=request.url.query,
            body=body,
            headers=headers,
        )
    except UpstreamBusy:
        raise ApiError(503, "the gateway is busy; try again shortly", retry_after=1) from None
    except UpstreamTimeout:
        raise ApiError(504, f"the {service} service did not answer in time") from None
    except UpstreamUnavailable:
        raise ApiError(503, f"the {service} service is unavailable") from None
    if answer.status == 202 and segments[-1] == "checkout" and request.method == "POST":
        # the saga's first line: where its trace id and order meet
        order = orjson.loads(answer.body).get("order_id")
        log.info(
            "checkout of cart %s accepted: order %s", segments[-2], order, extra={"order": order}
        )
    return Response(
        content=answer.body,
        status_code=answer.status,
        headers={
            name: value
            for name in _FORWARDED_RESPONSE_HEADERS
            if (value := answer.headers.get(name)) is not None
        },
    )
