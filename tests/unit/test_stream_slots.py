"""Order streams are capped per customer and overall (429), and counted."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from services.common.errors import ApiError
from services.gateway.stream import StreamSlots


def test_streams_are_capped_per_customer_and_overall_and_counted():
    registry = CollectorRegistry()
    slots = StreamSlots(per_customer=2, overall=3, registry=registry)

    def open_now() -> float:
        return registry.get_sample_value("shop_gateway_open_streams") or 0.0

    a1, a2 = slots.take("a"), slots.take("a")
    with pytest.raises(ApiError) as refused:
        slots.take("a")
    assert refused.value.status == 429 and "2 order streams open" in str(refused.value)
    b1 = slots.take("b")
    with pytest.raises(ApiError) as full:
        slots.take("c")  # the gateway's three are taken
    assert full.value.status == 429 and "too many order streams" in str(full.value)
    assert open_now() == 3
    a1()
    a1()  # the stream's end and the response's both release: once counts
    assert open_now() == 2
    slots.take("c")
    a2(), b1()
    assert open_now() == 1 and slots.open == {"c": 1}
