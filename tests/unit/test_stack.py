"""The stack description says what each part consumes; the services' code
decides it. This keeps the two in step."""

from __future__ import annotations

from shopctl.stack import PARTS


def subscribed(part_name: str) -> list[str]:
    import importlib

    module = importlib.import_module(f"services.{part_name}.app")
    app = module.create_app()
    runtime = app.state.runtime
    return [s.event.routing_key for s in runtime.consumers.subscriptions]


def test_each_part_consumes_what_the_stack_description_says(monkeypatch):
    monkeypatch.setenv("SHOP_FAULT_INJECTION", "true")  # the gateway's sandbox secret
    for part in PARTS:
        assert sorted(part.consumes) == sorted(subscribed(part.name)), part.name


def test_a_part_keeps_idle_connections_longer_than_its_clients_do():
    """Otherwise a client can send a request on a connection the part is
    closing: the request fails ("Server disconnected without sending a
    response"), as cart's catalog lookups did under a flood's fill."""
    from services.common.upstream import KEEPALIVE_S
    from shopctl.stack import PARTS, uvicorn_args

    for part in PARTS:
        args = uvicorn_args(part, "127.0.0.1", 8000)
        server_s = float(args[args.index("--timeout-keep-alive") + 1])
        assert server_s > KEEPALIVE_S + 10, part.name
