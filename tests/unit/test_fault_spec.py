"""A fault's order is the saga's id or its start; what FaultSpec refuses is
said in one line (the CLI's error, the TUI's notice)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.faults import FaultSpec, refusal

ORDER = "7da6f07f-cacb-4312-a7a0-d926024283e9"


def spec(**fields) -> FaultSpec:
    return FaultSpec(part="payment", event="StockReserved", **{"kind": "drop", **fields})


def refused(**fields) -> str:
    with pytest.raises(ValidationError) as raised:
        spec(**fields)
    return refusal(raised.value)


def test_a_fault_for_the_start_of_an_id_matches_that_saga_only():
    fault = spec(order=ORDER[:8])
    assert fault.matches("StockReserved", ORDER)
    assert not fault.matches("StockReserved", "0" + ORDER[1:])
    assert not fault.matches("PaymentFailed", ORDER)
    assert not fault.matches("StockReserved", None)
    assert spec().matches("StockReserved", None)  # no order: every saga


def test_what_is_refused_is_said_in_one_line():
    assert refused(order="7da6f07") == "order: its id, or its first 8 characters"
    assert refused(kind="boom").startswith("no fault kind 'boom'; the kinds are delay, fail")
    assert refused(times=0) == "times: Input should be greater than or equal to 1"
