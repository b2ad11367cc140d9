"""The gateway's OpenAPI document: its own routes and, under /api, every
route the services expose through it, read from the services' own
documents. Built on first request (the services may start after the
gateway) and kept."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI

from services.common.errors import ApiError
from services.common.identity import CUSTOMER_HEADER, ROLE_HEADER
from services.common.upstream import UpstreamError, Upstreams

from .proxy import route_policy
from .settings import GatewaySettings

_INTERNAL_HEADERS = {CUSTOMER_HEADER.lower(), ROLE_HEADER.lower()}
_METHODS = {"get", "post", "put", "patch", "delete"}
BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


class GatewayOpenAPI:
    def __init__(self, app: FastAPI, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self.document: dict[str, Any] | None = None

    async def get(self, client: Upstreams) -> dict[str, Any]:
        if self.document is None:
            services: dict[str, dict[str, Any]] = {}
            for base in sorted(set(self.settings.upstreams().values())):
                try:
                    answer = await client.request("GET", f"{base}/openapi.json")
                except UpstreamError:
                    answer = None
                if answer is None or answer.status != 200:
                    raise ApiError(503, f"the service at {base} is unavailable")
                services[base] = answer.json()
            self.document = merge(self.app.openapi(), services, self.settings)
        return self.document


def merge(
    own: dict[str, Any], services: dict[str, dict[str, Any]], settings: GatewaySettings
) -> dict[str, Any]:
    """``own`` with every service path routed through /api/ added."""
    document = copy.deepcopy(own)
    paths: dict[str, Any] = document.setdefault("paths", {})
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    upstreams = settings.upstreams()
    for base, service in services.items():
        service = _rename_conflicts(service, schemas)
        for name, schema in service.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(name, schema)
        for path, item in service.get("paths", {}).items():
            segments = [s for s in path.split("/") if s]
            if not segments or upstreams.get(segments[0]) != base:
                continue  # health, metrics: the service's own, not routed
            routed = {}
            for method, operation in item.items():
                if method not in _METHODS:
                    continue
                operation = dict(operation)
                operation["parameters"] = [
                    p
                    for p in operation.get("parameters", [])
                    if not (p.get("in") == "header" and p["name"].lower() in _INTERNAL_HEADERS)
                ] or []
                if not operation["parameters"]:
                    del operation["parameters"]
                if route_policy(method.upper(), segments) != "public":
                    operation["security"] = [{"bearerAuth": []}]
                routed[method] = operation
            if routed:
                paths[f"/api{path}"] = routed
    document["components"].setdefault("securitySchemes", {}).update(BEARER)
    return document


def _rename_conflicts(service: dict[str, Any], taken: dict[str, Any]) -> dict[str, Any]:
    """The service's document with schemas whose names are taken by a
    different schema renamed (``<Title>_<Name>``), references included."""
    own = service.get("components", {}).get("schemas", {})
    prefix = "".join(w.capitalize() for w in service.get("info", {}).get("title", "x").split())
    renames = {n: f"{prefix}_{n}" for n, s in own.items() if n in taken and taken[n] != s}
    if not renames:
        return service
    text = json.dumps(service)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed: dict[str, Any] = json.loads(text)
    schemas = renamed["components"]["schemas"]
    for old, new in renames.items():
        schemas[new] = schemas.pop(old)
    return renamed
