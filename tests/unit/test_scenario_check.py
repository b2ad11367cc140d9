"""`scenario check` refuses each mistake a new user made writing scenarios
from the docs (issue 26), naming its line and column, with a suggestion
where a known name is close; every shipped file and every docs example
passes it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shopctl.errors import UsageError
from shopctl.scenario.loading import load

ROOT = Path(__file__).resolve().parents[2]
HEAD = """\
name: a mistake
method:
  - http: {method: POST, path: /api/carts, status: 201, capture: {cart: id}}
"""


def refusal(tmp_path: Path, body: str) -> str:
    path = tmp_path / "mistake.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(UsageError) as refused:
        load(path)
    return refused.value.message.replace(str(path), "FILE")


MISTAKES = {
    "misspelled event type": (
        "  - await: {order: '${cart}', events: [StockReserved, PaymentSucceded]}\n",
        "FILE:4:55: method/1/await/events/1: no event type 'PaymentSucceded'; "
        "did you mean PaymentSucceeded?",
    ),
    "misspelled event in a count": (
        "  - await: {order: '${cart}', counts: {ShipmentCreated: 1}}\n",
        "FILE:4:40: method/1/await/counts/ShipmentCreated: no event type 'ShipmentCreated'; "
        "did you mean ShippingCreated?",
    ),
    "made-up outcome": (
        "  - await: {order: '${cart}', outcome: DONE}\n",
        "FILE:4:31: method/1/await/outcome: no outcome 'DONE' (known: COMPLETED, CANCELLED,",
    ),
    "misspelled reason of an outcome": (
        "  - await: {order: '${cart}', outcome: CANCELLED (out_of_stok)}\n",
        "did you mean CANCELLED (out_of_stock)?",
    ),
    "undefined variable": (
        "  - http: {method: POST, path: '/api/carts/${kart}/checkout', status: 202}\n",
        "FILE:4:26: method/1/http/path: ${kart} is not set before this point (set it in "
        "variables:, or capture: it in an earlier step); did you mean cart?",
    ),
    "variable captured only later": (
        "  - await: {order: '${order}'}\n"
        "  - http: {method: GET, path: /api/orders, capture: {order: id}}\n",
        "FILE:4:13: method/1/await/order: ${order} is not set before this point",
    ),
    "hold without until": (
        "  - fault: {part: payment, event: StockReserved, kind: hold}\n",
        "FILE:4:5: method/1/fault: a hold needs until: the event type that lets it go",
    ),
    "delay without ms": (
        "  - fault: {part: payment, event: StockReserved, kind: delay}\n",
        "FILE:4:5: method/1/fault: a delay needs ms: how many milliseconds",
    ),
    "a step with a name and no action": (
        "  - name: nothing to do\n",
        "FILE:4:5: method/1: a step needs one action of http, fault,",
    ),
    "two actions in one step": (
        "  - sleep: 1\n    fault: {part: payment, event: StockReserved, kind: drop}\n",
        "FILE:4:5: method/1: one action per step; this one has sleep and fault "
        "(make it one step each)",
    ),
    "a fault on an event the part never takes": (
        "  - fault: {part: payment, event: OrderCreated, kind: fail}\n",
        "FILE:4:28: method/1/fault/event: payment does not consume OrderCreated (it takes "
        "StockReserved, OrderCancelled, ChargePayment, RefundPayment); OrderCreated is "
        "consumed by inventory",
    ),
    "a misspelled fault kind": (
        "  - fault: {part: payment, event: StockReserved, kind: dupliacte}\n",
        "FILE:4:50: method/1/fault/kind: 'dupliacte' is not one of delay, fail, crash, "
        "lose_ack, duplicate, drop, hold, publish_twice; did you mean duplicate?",
    ),
    "a misspelled field": (
        "  - fault: {part: payment, event: StockReserved, kind: delay, ms: 5, tims: 2}\n",
        "'tims' is not a field here (fields: part, event, kind, order, times,",
    ),
    "a routing key no queue takes": (
        "  - publish: {routing_key: order.craeted, body: x}\n",
        "FILE:4:15: method/1/publish/routing_key: no queue takes routing key 'order.craeted' "
        "(a message to it is lost); did you mean order.created?",
    ),
    "a dead-letter queue that does not exist": (
        "  - dlq: {replay: inventory.order.create.dlq}\n",
        "did you mean inventory.order.created.dlq?",
    ),
    "a dead-letter reason that does not exist": (
        "expect:\n  - dead_letter: {queue: inventory.order.created.dlq, reason: handler_fail}\n",
        "FILE:5:55: expect/0/dead_letter/reason: no reason 'handler_fail'; "
        "did you mean handler_failed?",
    ),
    "a payment status that does not exist": (
        "  - await: {order: '${cart}', payments: {CAPTURE: 1}}\n",
        "no payment status 'CAPTURE'; did you mean CAPTURED?",
    ),
    "a capture inside a parallel copy read after it": (
        "  - parallel: {count: 2, steps: [{http: {method: GET, path: /api/orders, "
        "capture: {mine: items}}}]}\n"
        "  - http: {method: GET, path: '/api/orders/${mine}'}\n",
        "${mine} is not set before this point",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_scenario_check_refuses_each_mistake_with_its_line(tmp_path, mistake):
    body, said = MISTAKES[mistake]
    assert said in refusal(tmp_path, body)


def test_every_mistake_of_a_file_is_said_at_once_in_line_order(tmp_path):
    text = refusal(
        tmp_path,
        """\
  - fault: {part: payment, event: StockReserved, kind: hold}
  - await: {order: '${cart}', events: [PaymentSucceded]}
  - sleep: '${nothing}'
""",
    )
    lines = text.splitlines()
    assert [line.split(":")[1] for line in lines] == ["4", "5", "6"], text


def test_a_capture_of_a_concurrent_branch_is_seen_after_the_block(tmp_path):
    path = tmp_path / "fine.yaml"
    path.write_text(
        HEAD
        + textwrap.indent(
            textwrap.dedent(
                """\
            - concurrent:
                buy:
                  - http: {method: GET, path: /api/orders, capture: {listed: items}}
                wait:
                  - sleep: 0.1
            - await: {order: '${listed}'}
            """
            ),
            "  ",
        )
    )
    assert load(path).name == "a mistake"


def test_the_shipped_scenarios_pass_the_check():
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        load(path)


def test_the_schema_names_the_fault_kinds_the_core_has():
    """The JSON Schema is data: it cannot import the kinds, so it is held to them."""
    import json

    from services.common.faults import FAULT_KINDS
    from shopctl.scenario import fuzz

    schema = json.loads((ROOT / "shopctl" / "scenario" / "schema.json").read_text())
    assert tuple(schema["$defs"]["fault"]["properties"]["kind"]["enum"]) == FAULT_KINDS
    assert set(fuzz.DEFAULT_KINDS) <= set(FAULT_KINDS)
