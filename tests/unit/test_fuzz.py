"""The fuzzer's search, without a stack: the same seed draws the same
schedules, a failure shrinks to the smallest schedule that fails the same
way, and the shrinking stops at its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopctl.errors import ShopError
from shopctl.scenario.fuzz import (
    Fault,
    Schedule,
    failure_kind,
    fault_choices,
    fuzz,
    scenario_document,
    write_scenario,
)
from shopctl.scenario.loading import Scenario, load
from shopctl.scenario.runner import Result

PARTS = ["inventory", "payment"]
KINDS = ["duplicate", "delay", "fail"]


def result(passed: bool, failure: str = "") -> Result:
    return Result(Scenario(Path("x.yaml"), "x", {}), passed=passed, failure=failure)


def recording(fails_when):
    seen: list[Schedule] = []

    def execute(schedule: Schedule) -> Result:
        seen.append(schedule)
        if fails_when(schedule):
            return result(False, "invariant: SC-1a2b still has stock reserved: {'reserved': 1}")
        return result(True)

    return seen, execute


def test_the_same_seed_draws_the_same_schedules_and_another_seed_others():
    first, execute = recording(lambda s: False)
    fuzz(execute, seed=5, runs=15, parts=PARTS, kinds=KINDS)
    again, execute = recording(lambda s: False)
    fuzz(execute, seed=5, runs=15, parts=PARTS, kinds=KINDS)
    other, execute = recording(lambda s: False)
    fuzz(execute, seed=6, runs=15, parts=PARTS, kinds=KINDS)
    assert len(first) == 15 and first == again
    assert other != first
    drawn = {(f.part, f.event, f.kind) for s in first for f in s.faults}
    assert drawn <= set(fault_choices(PARTS, KINDS)) and len(drawn) > 3


def is_the_bug(schedule: Schedule) -> bool:
    return schedule.quantity == 1 and any(
        (f.part, f.event, f.kind) == ("inventory", "OrderCreated", "duplicate")
        for f in schedule.faults
    )


def test_a_failure_shrinks_to_the_one_fault_that_causes_it():
    seen, execute = recording(is_the_bug)
    report = fuzz(execute, seed=3, runs=60, parts=PARTS, kinds=KINDS)
    assert report.minimal is not None
    schedule, found = report.minimal
    assert schedule.faults == (Fault("inventory", "OrderCreated", "duplicate", 1, 200),)
    assert schedule.quantity == 1
    assert "still has stock reserved" in found.failure
    # every schedule ran once: the replay read the kept result
    assert len(seen) == len(set(seen))


def test_shrinking_stops_at_its_budget():
    seen, execute = recording(is_the_bug)
    report = fuzz(execute, seed=3, runs=60, parts=PARTS, kinds=KINDS, shrink_budget_s=0)
    assert report.minimal is not None and is_the_bug(report.minimal[0])
    first = next(i for i, s in enumerate(seen) if is_the_bug(s))
    assert len(seen) == first + 1  # nothing new ran after the first failure


def test_the_failure_kind_leaves_out_ids_and_counts():
    one = failure_kind("invariant: SC-1a2b still has stock reserved: {'reserved': 1}")
    two = failure_kind("invariant: SC-ffee99 still has stock reserved: {'reserved': 2}")
    assert one == two
    assert one != failure_kind("invariant: 2 new dead letters (order.x.dlq +2)")


def test_a_schedule_is_written_as_a_valid_scenario(tmp_path):
    schedule = Schedule((Fault("payment", "StockReserved", "delay", 2, 1000),), "tok_visa", 3)
    path = write_scenario(schedule, 11, tmp_path)
    loaded = load(path)  # the schema accepts it
    assert loaded.document == scenario_document(schedule, "fuzz seed 11, shrunk")
    faults = [s["fault"] for s in loaded.document["method"] if "fault" in s]
    assert faults == [
        {"part": "payment", "event": "StockReserved", "kind": "delay", "times": 2, "ms": 1000}
    ]


def test_nothing_to_draw_is_a_usage_error():
    with pytest.raises(ShopError) as raised:
        fuzz(lambda s: result(True), seed=1, runs=1, parts=["gateway"], kinds=["delay"])
    assert raised.value.exit_code == 2


def test_the_cli_draws_the_default_kinds_crash_among_them():
    import inspect

    from shopctl.commands.scenarios import scenario_fuzz
    from shopctl.scenario.fuzz import DEFAULT_KINDS

    default = inspect.signature(scenario_fuzz).parameters["kinds"].default
    assert default.split(",") == list(DEFAULT_KINDS) and "crash" in DEFAULT_KINDS
