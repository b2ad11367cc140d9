"""The event catalog as an AsyncAPI 3.0 document, generated from the same
pydantic models the services use (docs/asyncapi.json is its output)."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .events import COMMANDS, EVENT_MODELS, Envelope, EventData
from .settings import EVENTS_EXCHANGE


def asyncapi_document() -> dict[str, Any]:
    """Every event type: its channel (routing key on the events exchange) and
    the JSON Schema of its whole CloudEvents envelope."""
    envelopes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (Envelope[model], "validation")  # type: ignore[valid-type]
        for model in EVENT_MODELS.values()
    ]
    refs, schema = models_json_schema(envelopes, ref_template="#/components/schemas/{model}")
    schemas = schema.get("$defs", {})
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for (envelope, _), ref in refs.items():
        model = cast(
            type[EventData], cast(type[BaseModel], envelope).model_fields["data"].annotation
        )
        name = model.event_type
        messages[name] = {
            "name": name,
            "title": name,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": ref["$ref"]},
            **({"summary": (model.__doc__ or "").split("\n")[0]} if name in COMMANDS else {}),
        }
        where = (
            "the orchestrator's command to one participant"
            if name in COMMANDS
            else f"an orchestrated saga's go out under '{model.routing_key}.orchestrated', "
            "for the orchestrator alone"
        )
        channels[name] = {
            "address": model.routing_key,
            "description": f"Routing key {model.routing_key!r} on the {EVENTS_EXCHANGE!r} "
            f"topic exchange; {where} (docs/saga.md).",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": EVENTS_EXCHANGE, "type": "topic", "durable": True},
                }
            },
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "shop events",
            "version": "1.0.0",
            "description": "Domain events of the shop saga, and the orchestrator's commands "
            "when it runs orchestrated. Every message is a CloudEvents 1.0 envelope; "
            "correlationid is the order id, causationid the event that caused it, sagamode "
            "'orchestrated' marks an orchestrated saga's messages.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": dict(sorted(schemas.items())),
        },
    }
