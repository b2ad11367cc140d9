"""docs/architecture.md's diagrams name only events that exist, and draw
the whole saga: every event of the catalog appears in them."""

from __future__ import annotations

import re
from pathlib import Path

from services.common.events import EVENT_MODELS

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
# an event name in a diagram: CamelCase words ending the way events do
EVENT_NAME = re.compile(
    r"\b([A-Z][a-z]+(?:[A-Z][a-z]+)*"
    r"(?:Out|Created|Reserved|Failed|Succeeded|Completed|Cancelled|Released|Refunded"
    r"|Compensated))\b"
    # and the orchestrator's commands: a verb, then what it acts on
    r"|\b((?:Reserve|Release|Ship|Charge|Refund|Create|Cancel)[A-Z][a-z]+)\b"
)


def diagrams() -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", DOC.read_text(), re.S)


def test_every_event_in_a_diagram_is_in_the_catalog():
    named = {name for block in diagrams() for found in EVENT_NAME.findall(block) for name in found}
    named.discard("")
    unknown = named - set(EVENT_MODELS)
    assert not unknown, f"docs/architecture.md names events the catalog lacks: {unknown}"


def test_every_saga_event_of_the_catalog_is_drawn():
    named = {name for block in diagrams() for found in EVENT_NAME.findall(block) for name in found}
    missing = set(EVENT_MODELS) - {"ProductCreated"} - named
    assert not missing, f"the diagrams leave out: {missing}"
    assert len(diagrams()) >= 7  # choreographed and orchestrated
