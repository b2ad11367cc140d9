"""Gateway routes: registration and tokens, the order stream, and the proxy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from services.common.errors import ApiError
from services.common.http import Runtime
from services.common.identity import Caller
from services.common.text import InputModel
from services.common.upstream import UpstreamError, Upstreams

from . import auth
from .models import customers
from .proxy import authorize, forward, identity_headers
from .settings import GatewaySettings
from .stream import TERMINAL_EVENTS, SagaBroadcaster
from .throttle import LoginThrottle

router = APIRouter()

_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$"


class Credentials(InputModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(pattern=_EMAIL, max_length=254)
    password: str = Field(min_length=1, max_length=128)


class Registration(Credentials):
    password: str = Field(min_length=8, max_length=128)


class Registered(BaseModel):
    customer_id: uuid.UUID


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


async def settings_of(request: Request) -> GatewaySettings:
    value: GatewaySettings = request.app.state.runtime.settings
    return value


async def client_of(request: Request) -> Upstreams:
    value: Upstreams = request.app.state.http
    return value


Settings = Annotated[GatewaySettings, Depends(settings_of)]
Client = Annotated[Upstreams, Depends(client_of)]


@router.post("/api/auth/register", status_code=201)
async def register(
    body: Registration, request: Request, runtime: Runtime, settings: Settings
) -> Registered:
    email = body.email.lower()
    if email == settings.admin_email.lower():
        raise ApiError(409, "this email is already registered")
    customer_id = uuid.uuid4()
    password_hash = await auth.hash_password(body.password, request.app.state.hashing)
    try:
        async with runtime.unit_of_work() as uow:
            await uow.conn.execute(
                customers.insert().values(id=customer_id, email=email, password_hash=password_hash)
            )
    except IntegrityError:
        raise ApiError(409, "this email is already registered") from None
    return Registered(customer_id=customer_id)


@router.post("/api/auth/token")
async def token(body: Credentials, request: Request, runtime: Runtime, settings: Settings) -> Token:
    email = body.email.lower()
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    await throttle.check(email, address)
    caller: Caller | None = None
    if auth.is_admin_login(settings, email, body.password):
        caller = Caller(auth.admin_id(settings), "admin")
    else:
        async with runtime.engine.connect() as conn:
            row = (await conn.execute(customers.select().where(customers.c.email == email))).first()
        # an unknown email is checked against a dummy hash: the same time as a wrong password
        hashing = request.app.state.hashing
        stored = row.password_hash if row is not None else None
        if await auth.verify_password(stored, body.password, hashing) and row is not None:
            caller = Caller(row.id, "customer")
            if auth.needs_rehash(row.password_hash):  # the argon2 parameters changed
                rehashed = await auth.hash_password(body.password, hashing)
                async with runtime.unit_of_work() as uow:
                    await uow.conn.execute(
                        customers.update()
                        .where(customers.c.id == row.id)
                        .values(password_hash=rehashed)
                    )
    if caller is None:
        await throttle.failed(email, address)
        raise ApiError(401, "wrong email or password")
    await throttle.succeeded(email)
    return Token(access_token=auth.issue_token(settings, caller), expires_in=settings.jwt_ttl_s)


@router.get("/api/orders/{order_id}/stream")
async def order_stream(
    order_id: uuid.UUID, request: Request, settings: Settings, client: Client
) -> EventSourceResponse:
    """The order's saga events as they happen (text/event-stream): first a
    ``snapshot`` of the order, then the steps this gateway saw before the
    stream opened, then each new one; ends shortly after the terminal event
    (its compensations come right after it)."""
    caller = authorize(settings, request, "customer")
    broadcaster: SagaBroadcaster = request.app.state.broadcaster

    async def fetch_order() -> dict[str, Any]:
        try:
            answer = await client.request(
                "GET", f"{settings.order_url}/orders/{order_id}", headers=identity_headers(caller)
            )
        except UpstreamError:
            raise ApiError(503, "the order service is unavailable") from None
        if answer.status == 404:
            raise ApiError(404, f"order {order_id} not found")
        if answer.status != 200:
            raise ApiError(503, "the order service is unavailable")
        order: dict[str, Any] = answer.json()
        return order

    # Ownership first: 404 before any stream starts. The order is created
    # from CartCheckedOut just after checkout's 202, so give it a moment.
    deadline = asyncio.get_running_loop().time() + settings.stream_order_wait_s
    while True:
        try:
            await fetch_order()
            break
        except ApiError as exc:
            if exc.status not in (404, 503) or asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.05)

    # a slot of this customer's and of the gateway's (429 past either),
    # given back when the stream ends, whichever way
    assert caller is not None  # the "customer" policy answers 401 without one
    release = request.app.state.streams.take(str(caller.customer_id))
    opened = asyncio.get_running_loop().time()

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            async for item in stream():
                yield item
        finally:
            release()

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with broadcaster.watch(str(order_id)) as watcher:
            order = await fetch_order()  # after subscribing: nothing falls between
            yield {"event": "snapshot", "data": orjson.dumps(order).decode()}
            sent: set[str] = set()

            def message(event: dict[str, Any]) -> dict[str, str]:
                sent.add(str(event.get("id")))
                return {
                    "event": str(event.get("type")),
                    "id": str(event.get("id")),
                    "data": orjson.dumps(event).decode(),
                }

            # the steps that came before this stream opened, as far as seen
            earlier = broadcaster.recent(str(order_id))
            for event in earlier:
                yield message(event)
            loop = asyncio.get_running_loop()
            ended = any(e.get("type") in TERMINAL_EVENTS for e in earlier)
            ends_at: float | None = None  # after the terminal event: its compensations
            if ended:
                ends_at = loop.time() + settings.stream_linger_s
            elif order["status"] in ("COMPLETED", "CANCELLED"):
                if not earlier and _ended_before(order, settings.stream_replay_s):
                    return  # none of its events can come any more: the snapshot says it all
                # Over in the database, but its terminal event (published
                # after the commit) has not reached this gateway yet, or the
                # reading this stream started replays its steps still: wait
                # for them as long as for the compensations after them.
                ends_at = loop.time() + settings.stream_linger_s
            too_old = opened + settings.stream_max_age_s  # an order that never ends
            while True:
                left = min(too_old, ends_at if ends_at is not None else too_old) - loop.time()
                if left <= 0:
                    return
                try:
                    event = await asyncio.wait_for(watcher.get(), left)
                except TimeoutError:
                    return
                if str(event.get("id")) in sent:
                    continue  # already replayed from the recent ones
                yield message(event)
                if event.get("type") in TERMINAL_EVENTS and not ended:
                    # a cancellation's compensations (stock released, a late
                    # capture refunded) follow it: the stream stays a moment
                    ended = True
                    ends_at = loop.time() + settings.stream_linger_s

    return EventSourceResponse(events(), ping=15, background=BackgroundTask(release))


def _ended_before(order: dict[str, Any], replay_s: float) -> bool:
    """Whether the order ended longer ago than the live stream reads back
    (or says not when): none of its events is still to come."""
    try:
        ended = datetime.fromisoformat(str(order.get("updated_at")))
    except ValueError:
        return True
    ended = ended if ended.tzinfo else ended.replace(tzinfo=UTC)
    return (datetime.now(UTC) - ended).total_seconds() > replay_s


@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request, client: Client) -> JSONResponse:
    """The whole API as this gateway serves it (its routes and the services')."""
    return JSONResponse(await request.app.state.openapi.get(client))


@router.get("/docs", include_in_schema=False)
async def api_docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="shop API")


@router.api_route(
    "/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def proxy(path: str, request: Request, settings: Settings, client: Client) -> Response:
    return await forward(client, settings, request, path)
