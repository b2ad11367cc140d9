"""The sandbox's tools as a client of the gateway: what they share when they
call it (a scenario's customer, the bench's buyers)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def patient_post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], patience_s: float = 30.0
) -> httpx.Response:
    """POST as a well-behaved client does: a 503 is tried again after its
    Retry-After (password hashing is admitted a few at a time)."""
    deadline = time.monotonic() + patience_s
    while True:
        answer = await client.post(path, json=body)
        if answer.status_code != 503 or time.monotonic() >= deadline:
            return answer
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
