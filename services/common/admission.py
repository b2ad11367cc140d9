"""Admission control: a bounded number of requests at work, a bounded
queue before them, and a quick 503 for the rest (case L2). Overload then
costs the caller a retry, never a growing backlog and answers that come
later and later."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError


class Overloaded(ApiError):
    """No slot within the wait: 503 with Retry-After."""

    def __init__(self, what: str) -> None:
        super().__init__(503, f"{what} is busy; try again shortly", retry_after=1)


class Admission:
    """At most ``limit`` holders at once; up to ``queue`` more wait at most
    ``wait_s`` for a slot; any beyond that are refused at once."""

    def __init__(self, what: str, limit: int, queue: int, wait_s: float) -> None:
        self.what = what
        self.limit = limit
        self.queue = queue
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(limit)
        self.waiting = 0
        self.refused = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; raise Overloaded when none comes."""
        if self._slots.locked() and self.waiting >= self.queue:
            self.refused += 1
            raise Overloaded(self.what)
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await self._slots.acquire()
        except TimeoutError:
            self.refused += 1
            raise Overloaded(self.what) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


class AdmissionMiddleware:
    """ASGI middleware: each HTTP request that ``admits(path)`` holds a slot
    of ``admission`` while it is handled; without one it gets 503 at once."""

    def __init__(self, app: ASGIApp, admission: Admission, admits: Callable[[str], bool]) -> None:
        self.app = app
        self.admission = admission
        self.admits = admits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.admits(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            async with self.admission.slot():
                await self.app(scope, receive, send)
        except Overloaded as refused:
            await refused.response()(scope, receive, send)
