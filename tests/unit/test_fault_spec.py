"""A fault's order is the saga's id or its start; what FaultSpec refuses is
said in one line (the CLI's error, the TUI's notice)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.faults import FaultSpec, refusal

ORDER = "7da6f07f-cacb-4312-a7a0-d926024283e9"


def spec(**fields) -> FaultSpec:
    return FaultSpec(**{"part": "payment", "event": "StockReserved", "kind": "drop", **fields})


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


OTHER = "0" + ORDER[1:]
THIRD = "1" + ORDER[1:]


def board(**fields):
    from services.common.faults import FaultCommand, FaultSwitchboard

    switchboard = FaultSwitchboard("payment")
    switchboard.apply(FaultCommand(action="set", fault=spec(**fields)))
    return switchboard


def test_next_takes_the_next_sagas_whole_and_no_other():
    switchboard = board(next=2)
    assert switchboard.decide("StockReserved", ORDER).kind == "drop"
    assert switchboard.decide("StockReserved", OTHER).kind == "drop"
    assert switchboard.decide("StockReserved", THIRD).kind == "none"  # a third saga: spared
    assert switchboard.decide("StockReserved", ORDER).kind == "drop"  # its redelivery: still its
    assert switchboard.describe()[0]["sagas"] == [ORDER, OTHER]


def test_next_with_times_counts_messages_of_its_sagas():
    switchboard = board(next=1, times=1)
    assert switchboard.decide("StockReserved", ORDER).kind == "drop"
    assert switchboard.decide("StockReserved", ORDER).kind == "none"
    assert switchboard.decide("StockReserved", OTHER).kind == "none"


def test_sku_and_match_read_the_event_data_only_when_asked():
    items = {"items": [{"sku": "MUG-1", "quantity": 1}], "customer_id": "c-1"}
    assert spec(sku="MUG-1").matches("StockReserved", ORDER, items)
    assert not spec(sku="MUG-2").matches("StockReserved", ORDER, items)
    failed = {"skus": ["MUG-2"]}
    assert not spec(sku="MUG-2").matches("StockReservationFailed", ORDER, failed)  # not its event
    assert spec(sku="MUG-2", event="StockReservationFailed").matches(
        "StockReservationFailed", ORDER, failed
    )
    assert spec(match={"customer_id": "c-1"}).matches("StockReserved", ORDER, items)
    assert not spec(match={"customer_id": "c-2"}).matches("StockReserved", ORDER, items)

    def unread():
        raise AssertionError("a fault without sku or match never reads the data")

    assert spec().matches("StockReserved", ORDER, unread)


def test_a_hold_can_wait_on_another_order():
    import asyncio

    async def main():
        switchboard = board(kind="hold", until="PaymentSucceeded", until_order=OTHER[:8])
        fault = next(iter(switchboard.faults.values()))
        held = asyncio.create_task(switchboard.hold(fault, ORDER))
        await asyncio.sleep(0.01)
        switchboard.saw("PaymentSucceeded", ORDER)  # its own order: not what it waits on
        await asyncio.sleep(0.01)
        assert not held.done()
        switchboard.saw("PaymentSucceeded", OTHER)
        await asyncio.wait_for(held, 1)

    asyncio.run(main())


def test_each_kind_is_refused_without_what_it_needs():
    assert refused(kind="delay") == "delay: ms, the milliseconds to delay, above 0"
    assert refused(kind="hold") == "hold: until, the event type that lets it go"
    assert refused(until_order=ORDER).startswith("until_order: only a hold")
    assert refused(at="after_commit").startswith("at: only a crash")
    assert spec(kind="crash", at="after_commit").at == "after_commit"
    assert refused(next=0) == "next: Input should be greater than or equal to 1"


def test_tuning_values_are_checked_by_name():
    from pydantic import ValidationError

    from services.common.faults import FaultCommand

    for tuning in (
        {"saga_orchestrated": 0.0},
        {"saga_orchestrated": 1.0, "batch_max": 32.0},
        {"saga_step_timeout_s": 2.5},
    ):
        assert FaultCommand(action="tune", tuning=tuning).tuning == tuning
    for wrong in (
        {"saga_orchestrated": 0.5},
        {"batch_max": 0.0},
        {"batch_max": 2.5},
        {"batch_max": 1000.0},
        {"saga_step_timeout_s": 0.0},
    ):
        with pytest.raises(ValidationError):
            FaultCommand(action="tune", tuning=wrong)
