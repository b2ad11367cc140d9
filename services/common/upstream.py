"""One pooled HTTP client for a part that asks another over HTTP: the
gateway for the services behind it, cart for the catalog's prices.

aiohttp, not httpx: under the bench's flood (64 requests at once) httpx's
connection pool scanned every pooled connection, polling each socket, on
every request: 1.7 ms of the gateway's CPU a request, against 0.1 ms for
aiohttp's (docs/performance-journal.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from . import tracing

# idle connections to the parts; less than their servers keep them (shopctl.stack)
KEEPALIVE_S = 30


class UpstreamError(Exception):
    """The service could not be asked or did not answer."""


class UpstreamBusy(UpstreamError):
    """No connection to the service within the connect timeout."""


class UpstreamTimeout(UpstreamError):
    """The service took longer than the gateway waits."""


class UpstreamUnavailable(UpstreamError):
    """Refused, reset or closed: the service is down or restarting."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Upstreams:
    """Made without a running loop (the app factory is synchronous); the
    session is opened on first use, in the serving loop."""

    def __init__(self, timeout_s: float, connect_s: float = 2.0, limit: int = 200) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s, connect=connect_s, sock_connect=connect_s
        )
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=KEEPALIVE_S),
                timeout=self._timeout,
                auto_decompress=False,  # bodies pass through as they came
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """``url`` is sent as given (already quoted), with ``query`` as the
        client wrote it."""
        target = URL(f"{url}?{query}" if query else url, encoded=True)
        with tracing.client_call(method, url) as context:
            if context:
                headers = {**(headers or {}), **context}
            try:
                async with self._open().request(
                    method, target, data=body, headers=headers, allow_redirects=False
                ) as answer:
                    tracing.answered(answer.status)
                    return Answer(answer.status, answer.headers, await answer.read())
            except aiohttp.ConnectionTimeoutError as exc:
                raise UpstreamBusy(str(exc)) from exc
            except TimeoutError as exc:
                raise UpstreamTimeout(str(exc)) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
