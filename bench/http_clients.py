"""The CPU an HTTP client spends per request, httpx against aiohttp, with
64 requests in flight on one keep-alive pool (what the gateway does under
the bench's flood). Needs a running sandbox; reads cart's /healthz.

    python bench/http_clients.py [--url http://127.0.0.1:8102/healthz] [--requests 3000]

Prints, per client and round, the client process's CPU per request and the
requests a second; the first pass of each client is a warm-up."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(fetch: Callable[[], Awaitable[None]], requests: int, concurrency: int):
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await fetch()

    cpu0, wall0 = cpu(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (cpu() - cpu0) / requests * 1e6, requests / (time.perf_counter() - wall0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8102/healthz")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    print(
        f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}; "
        f"{options.requests} GET {options.url}, {options.concurrency} in flight"
    )
    for round_ in range(1, options.rounds + 1):
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        async with httpx.AsyncClient(limits=limits) as client:

            async def with_httpx() -> None:
                (await client.get(options.url)).raise_for_status()

            await measure(with_httpx, options.requests, options.concurrency)
            per, rate = await measure(with_httpx, options.requests, options.concurrency)
            print(f"round {round_} httpx   {per:7.0f} us CPU a request, {rate:6.0f} requests/s")
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def with_aiohttp() -> None:
                async with session.get(options.url) as answer:
                    answer.raise_for_status()
                    await answer.read()

            await measure(with_aiohttp, options.requests, options.concurrency)
            per, rate = await measure(with_aiohttp, options.requests, options.concurrency)
            print(f"round {round_} aiohttp {per:7.0f} us CPU a request, {rate:6.0f} requests/s")


if __name__ == "__main__":
    asyncio.run(main())
