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


def test_each_part_consumes_what_the_stack_description_says():
    for part in PARTS:
        assert sorted(part.consumes) == sorted(subscribed(part.name)), part.name
