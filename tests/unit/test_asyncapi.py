"""The committed event catalog is the one the models generate."""

from __future__ import annotations

import json
from pathlib import Path

from services.common.asyncapi import asyncapi_document
from services.common.events import EVENT_MODELS

CATALOG = Path(__file__).parents[2] / "docs" / "asyncapi.json"


def test_committed_catalog_matches_the_event_models():
    committed = json.loads(CATALOG.read_text())
    assert committed == asyncapi_document(), (
        "docs/asyncapi.json is stale: regenerate it with `shopctl catalog > docs/asyncapi.json`"
    )


def test_catalog_has_a_channel_and_envelope_schema_per_event():
    document = asyncapi_document()
    assert set(document["channels"]) == set(EVENT_MODELS)
    for name, model in EVENT_MODELS.items():
        assert document["channels"][name]["address"] == model.routing_key
        ref = document["components"]["messages"][name]["payload"]["$ref"]
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert {"id", "type", "source", "data", "correlationid"} <= set(schema["required"])
