"""`shopctl scenario fuzz`: random fault schedules over one checkout's saga,
the invariants as the oracle. Hypothesis draws the schedules (same seed,
same schedules) and shrinks a failing one; the smallest is written out as a
scenario file that fails the same way when run.

Each schedule runs once: its result is kept, so Hypothesis's shrinking and
its final replay read the result instead of asking a live system the same
question twice (a distributed system need not answer the same way)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from services.common.faults import FAULT_KINDS
from shopctl.errors import UsageError
from shopctl.scenario.checks import CONSUMED, PRODUCED
from shopctl.scenario.execute import run_scenario
from shopctl.scenario.loading import Scenario
from shopctl.scenario.runner import Result, Target
from shopctl.stack import SERVICES

# Kinds a schedule draws from by default: each leaves a saga that must still
# end well (a crashed part is started again by its runtime, as docker's
# restart policy does, and the message it died on is delivered again). drop
# and hold need a step of their own (a restart, the event to wait for) and
# are left to hand-written scenarios.
DEFAULT_KINDS = ("delay", "fail", "lose_ack", "duplicate", "publish_twice", "crash")
KINDS = FAULT_KINDS
CARDS = ("tok_visa", "tok_chargeDeclined", "tok_chargeDeclinedInsufficientFunds")
_IDS = re.compile(r"SC-\w+|[0-9a-f]{8}-[0-9a-f-]{27}|\d+(\.\d+)?( s)?")


@dataclass(frozen=True)
class Fault:
    part: str
    event: str
    kind: str
    times: int = 1
    ms: int = 0

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "part": self.part,
            "event": self.event,
            "kind": self.kind,
            "times": self.times,
        }
        if self.kind == "delay":
            spec["ms"] = self.ms
        return spec

    def describe(self) -> str:
        extra = f" {self.ms} ms" if self.kind == "delay" else ""
        return f"{self.kind}{extra} x{self.times} {self.event} at {self.part}"


@dataclass(frozen=True)
class Schedule:
    faults: tuple[Fault, ...]
    card: str
    quantity: int  # of 2 in stock: 3 is out of stock

    def describe(self) -> str:
        faults = "; ".join(f.describe() for f in self.faults) or "no fault"
        return f"{self.card}, {self.quantity} of 2 in stock, {faults}"


def fault_choices(parts: list[str], kinds: list[str]) -> list[tuple[str, str, str]]:
    """Every (part, event, kind) a schedule may hold."""
    choices: list[tuple[str, str, str]] = []
    for service in SERVICES:
        if service.name not in parts:
            continue
        consumed = CONSUMED.get(service.name, ())
        for kind in kinds:
            events = PRODUCED.get(service.name, ()) if kind == "publish_twice" else consumed
            choices.extend((service.name, event, kind) for event in events)
    return choices


def scenario_document(schedule: Schedule, title: str) -> dict[str, Any]:
    """The schedule as a scenario file: one checkout with the faults on,
    nothing expected but the invariants."""
    faults = [{"name": f"fault: {f.describe()}", "fault": f.spec()} for f in schedule.faults]
    return {
        "name": title,
        "description": f"Found by shopctl scenario fuzz: {schedule.describe()}.",
        "method": [
            {
                "name": "a product with 2 in stock",
                "http": {
                    "as": "admin",
                    "method": "POST",
                    "path": "/api/products",
                    "body": {
                        "sku": "${sku}",
                        "name": "Fuzz item",
                        "description": "",
                        "price_cents": 700,
                        "currency": "EUR",
                        "initial_stock": 2,
                    },
                    "status": 201,
                },
            },
            {
                "name": "its stock is there",
                "http": {
                    "as": "anonymous",
                    "method": "GET",
                    "path": "/api/inventory/${sku}",
                    "status": 200,
                    "until": 15,
                },
            },
            *faults,
            {
                "name": "a cart",
                "http": {
                    "method": "POST",
                    "path": "/api/carts",
                    "status": 201,
                    "capture": {"cart": "id"},
                },
            },
            {
                "name": f"{schedule.quantity} in it",
                "http": {
                    "method": "POST",
                    "path": "/api/carts/${cart}/items",
                    "body": {"sku": "${sku}", "quantity": schedule.quantity},
                    "status": 200,
                },
            },
            {
                "name": f"check out with {schedule.card}",
                "http": {
                    "method": "POST",
                    "path": "/api/carts/${cart}/checkout",
                    "body": {
                        "payment": {"card_token": schedule.card},
                        "shipping_address": {
                            "name": "Fuzz Buyer",
                            "line1": "1 Test Street",
                            "city": "Leeds",
                            "postal_code": "LS1 1AA",
                            "country": "GB",
                        },
                    },
                    "status": 202,
                    "capture": {"order": "order_id"},
                },
            },
        ],
        "rollbacks": [{"clear_faults": "all"}],
        "dead_letters": 0,
    }


class ScheduleFailed(AssertionError):
    """The invariants (or a step) failed under a schedule."""


@dataclass
class FuzzReport:
    runs: list[tuple[Schedule, Result]] = field(default_factory=list)
    minimal: tuple[Schedule, Result] | None = None
    written: Path | None = None
    flaky: bool = False


def executor(target: Target, seed: int) -> Callable[[Schedule], Result]:
    """Runs one schedule as a scenario against the stack behind ``target``."""
    count = 0

    def execute(schedule: Schedule) -> Result:
        nonlocal count
        count += 1
        title = f"fuzz seed {seed} run {count}"
        document = scenario_document(schedule, title)
        scenario = Scenario(Path(f"fuzz-{seed}.yaml"), title, document)
        return asyncio.run(run_scenario(scenario, target))

    return execute


def fuzz(
    execute: Callable[[Schedule], Result],
    *,
    seed: int,
    runs: int,
    parts: list[str],
    kinds: list[str],
    max_faults: int = 3,
    shrink_budget_s: float = 240.0,
    on_run: Callable[[int, Schedule, Result, bool], None] | None = None,
) -> FuzzReport:
    """Draw ``runs`` schedules from ``seed`` and run each; shrink the first
    failing one within ``shrink_budget_s``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from hypothesis.errors import Flaky

    choices = fault_choices(parts, kinds)
    if not choices:
        raise UsageError("no fault to draw: check --parts and --kinds")
    faults = st.builds(
        lambda choice, times, ms: Fault(choice[0], choice[1], choice[2], times, ms),
        st.sampled_from(choices),
        st.integers(min_value=1, max_value=2),
        st.sampled_from([200, 1000, 2500]),
    )
    schedules = st.builds(
        lambda fs, card, quantity: Schedule(tuple(fs), card, quantity),
        st.lists(
            faults, min_size=0, max_size=max_faults, unique_by=lambda f: (f.part, f.event, f.kind)
        ),
        st.sampled_from(CARDS),
        st.sampled_from([1, 3]),
    )
    report = FuzzReport()
    seen: dict[Schedule, Result] = {}
    first_failure: list[float] = []

    kinds_of_failure: dict[str, type[ScheduleFailed]] = {}

    def failed_as(failure: str) -> type[ScheduleFailed]:
        """One exception class for each kind of failure, so that Hypothesis
        shrinks a schedule toward the same failure, not any failure."""
        kind = failure_kind(failure)
        if kind not in kinds_of_failure:
            kinds_of_failure[kind] = type("ScheduleFailed", (ScheduleFailed,), {})
        return kinds_of_failure[kind]

    def run_one(schedule: Schedule) -> None:
        result = seen.get(schedule)
        if result is None:
            over_budget = first_failure and time.monotonic() - first_failure[0] > shrink_budget_s
            if over_budget:
                return  # shrinking has had its time: untried schedules count as passing
            result = execute(schedule)
            seen[schedule] = result
            report.runs.append((schedule, result))
            if on_run is not None:
                on_run(len(report.runs), schedule, result, bool(first_failure))
        if not result.passed:
            if not first_failure:
                first_failure.append(time.monotonic())
            report.minimal = (schedule, result)
            raise failed_as(result.failure)(result.failure.splitlines()[0])

    @hypothesis_seed(seed)
    @settings(
        max_examples=runs,
        database=None,
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(schedules)
    def search(schedule: Schedule) -> None:
        run_one(schedule)

    try:
        search()
    except ScheduleFailed:
        pass
    except Flaky:
        report.flaky = True
    return report


def failure_kind(failure: str) -> str:
    """The part of a failure's first line that names what broke, without
    the ids and counts that change from run to run."""
    first = failure.splitlines()[0] if failure else ""
    first = _IDS.sub("", first)
    return " ".join(first.split()[:8])


def write_scenario(schedule: Schedule, seed: int, directory: Path) -> Path:
    """The shrunk schedule as a scenario file under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"fuzz-seed-{seed}.yaml"
    yaml = YAML()
    yaml.default_flow_style = None
    with path.open("w") as out:
        yaml.dump(scenario_document(schedule, f"fuzz seed {seed}, shrunk"), out)
    return path
