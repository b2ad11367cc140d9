"""A stand-in app for the fork server's tests: answers /readyz as its
SHOP_SERVICE_NAME with its SHOP_INSTANCE_ID, and says which process it is."""

from __future__ import annotations

import json
import os
from typing import Any


def create_app() -> Any:
    if os.environ.get("FORKED_APP_FAILS") == os.environ.get("SHOP_SERVICE_NAME"):
        raise RuntimeError("cannot start: this part was told to fail")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps(
            {
                "status": "ready",
                "service": os.environ["SHOP_SERVICE_NAME"],
                "instance": os.environ["SHOP_INSTANCE_ID"],
                "pid": os.getpid(),
                "pgid": os.getpgid(0),
                "own": os.environ.get("FORKED_APP_OWN", ""),
            }
        ).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
