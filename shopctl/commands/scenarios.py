"""`shopctl scenario`: check, list, run and fuzz scenario files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shopctl.commands.common import RuntimeChoice, SagaChoice, out, waiting_for
from shopctl.commands.stack import down, up
from shopctl.errors import ShopError, UsageError
from shopctl.runtimes.select import current_runtime
from shopctl.settings import SandboxSettings
from shopctl.stack import part

app = typer.Typer(help="Scenario files: run, check, list.", no_args_is_help=True)
Targets = Annotated[
    list[Path], typer.Argument(metavar="FILES|DIRS", help="scenario files or folders")
]


@app.command("check")
def scenario_check(targets: Targets) -> None:
    """Validate scenario files (YAML and schema) without running them."""
    from shopctl.scenario.loading import load, scenario_files

    for path in scenario_files(targets):
        out.print(f"[green]ok[/] {path}: {load(path).name}")


@app.command("list")
def scenario_list(targets: Targets) -> None:
    """The scenarios in FILES|DIRS, by name."""
    from shopctl.scenario.loading import load, scenario_files

    table = Table("file", "scenario", "steps")
    for path in scenario_files(targets):
        loaded = load(path)
        table.add_row(str(path), loaded.name, str(len(loaded.section("method"))))
    out.print(table)


SettleOption = Annotated[
    float,
    typer.Option(
        min=0.5,
        max=600,
        help="seconds the invariants wait for stock and payments to settle after a scenario "
        "(what a failing one costs; longer than its longest fault delay)",
    ),
]


KeepUp = Annotated[bool, typer.Option("--keep-up", help="leave a stack started for this run up")]
SagaOption = Annotated[
    SagaChoice | None,
    typer.Option(
        help="run each scenario's orders in this saga mode (the order service is switched "
        "for the scenario, faults on a choreography event moved to its command; docs/saga.md); "
        "default: the stack's own"
    ),
]


@contextmanager
def stack_for_run(runtime: str, keep_up: bool) -> Iterator[tuple[SandboxSettings, str]]:
    """The stack that is up, or one started for this run (and stopped after
    it unless ``keep_up``); the settings and the gateway's URL."""
    from shopctl.amqp import quiet_broker_clients
    from shopctl.runtimes.processes import url_ready

    quiet_broker_clients()  # a broker restart is a step here, not a traceback
    settings = SandboxSettings()
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    started_here = not url_ready(gateway, "gateway")
    if started_here:
        up(runtime=runtime, build=False)
    try:
        yield settings, gateway
    finally:
        if started_here and not keep_up:
            out.print("[dim]stopping the stack this run started (--keep-up leaves it up)[/]")
            down(volumes=False)


@app.command("run")
def scenario_run(
    targets: Targets,
    junit: Annotated[Path | None, typer.Option(help="write a JUnit XML report here")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="for each failure, a folder of what it saw here")
    ] = None,
    runtime: RuntimeChoice = "auto",
    keep_up: KeepUp = False,
    settle: SettleOption = 15.0,
    saga: SagaOption = None,
) -> None:
    """Run scenarios against the stack (started first when it is not up, and
    stopped after unless --keep-up); exit 1 when any fails."""
    from shopctl.scenario.execute import write_junit
    from shopctl.scenario.loading import load, scenario_files

    loaded = [load(path) for path in scenario_files(targets)]  # every file checked first
    with stack_for_run(runtime, keep_up) as (settings, gateway):
        results = _run_scenarios(
            loaded, settings, gateway, bundle, settle, saga.value if saga else None
        )
    table = Table("scenario", "result", "seconds")
    for result in results:
        colour = "yellow" if result.expected_failure else "green" if result.as_expected else "red"
        table.add_row(
            result.scenario.name, f"[{colour}]{result.verdict}[/]", f"{result.seconds:.1f}"
        )
    out.print(table)
    if junit is not None:
        write_junit(results, junit)
        out.print(f"JUnit report: {junit}")
    failed = [r for r in results if not r.as_expected]
    if failed:
        raise ShopError(f"{len(failed)} of {len(results)} scenarios did not end as expected")


@app.command("fuzz")
def scenario_fuzz(
    seed: Annotated[int, typer.Option(help="the same seed draws the same schedules")] = 0,
    runs: Annotated[int, typer.Option(min=1, max=10_000, help="schedules to try")] = 20,
    parts: Annotated[
        str, typer.Option(help="parts whose faults are drawn, comma-separated")
    ] = "cart,order,inventory,payment,shipping",
    kinds: Annotated[
        str, typer.Option(help="fault kinds drawn, comma-separated")
    ] = "delay,fail,lose_ack,duplicate,publish_twice,crash",  # fuzz.DEFAULT_KINDS
    max_faults: Annotated[int, typer.Option(min=1, max=10, help="faults in one schedule")] = 3,
    out_dir: Annotated[
        Path, typer.Option("--out", help="where the shrunk failing scenario is written")
    ] = Path("fuzz-found"),
    shrink_budget: Annotated[
        float, typer.Option(min=0, help="seconds spent shrinking a failure at most")
    ] = 240.0,
    runtime: RuntimeChoice = "auto",
    keep_up: KeepUp = False,
    settle: SettleOption = 8.0,
    saga: SagaOption = None,
) -> None:
    """Random fault schedules over a checkout's saga (Hypothesis), the
    invariants as the oracle; a failure is shrunk and written out as a
    scenario file. Exit 1 when one is found."""
    from shopctl.scenario.fuzz import KINDS, executor, fuzz, write_scenario

    chosen_parts = [p.strip() for p in parts.split(",") if p.strip()]
    for name in chosen_parts:
        part(name)
    chosen_kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen_kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown fault kind {unknown[0]!r}; use {', '.join(KINDS)}")

    def shown(index: int, schedule: Any, result: Any, shrinking: bool) -> None:
        verdict = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
        stage = "shrink" if shrinking else "run"
        out.print(f"{stage} {index:>3}: {verdict} {result.seconds:5.1f} s  {schedule.describe()}")
        if not result.passed:
            out.print(f"          {result.failure.splitlines()[0]}", markup=False)

    with stack_for_run(runtime, keep_up) as (settings, gateway):
        from shopctl.scenario.target import stack_target

        target = stack_target(settings, gateway, waiting_for)
        target.settle_s = settle
        target.saga = saga.value if saga else None
        report = fuzz(
            executor(target, seed),
            seed=seed,
            runs=runs,
            parts=chosen_parts,
            kinds=chosen_kinds,
            max_faults=max_faults,
            shrink_budget_s=shrink_budget,
            on_run=shown,
        )
    if report.minimal is None:
        note = " (a failure seen once did not come back)" if report.flaky else ""
        out.print(f"[green]{len(report.runs)} schedules from seed {seed}: no failure[/]{note}")
        return
    schedule, result = report.minimal
    path = write_scenario(schedule, seed, out_dir)
    out.print(f"[red]smallest failing schedule[/]: {schedule.describe()}")
    out.print(result.failure, markup=False, highlight=False)
    out.print(f"written: {path} (shopctl scenario run {path})")
    raise ShopError(f"seed {seed} found a failing schedule after {len(report.runs)} runs")


def _run_scenarios(
    loaded: list[Any],
    settings: SandboxSettings,
    gateway: str,
    bundle: Path | None,
    settle_s: float,
    saga: str | None = None,
) -> list[Any]:
    import asyncio

    from shopctl.observe.timeline import render_timeline
    from shopctl.scenario.execute import run_scenario
    from shopctl.scenario.target import stack_target

    target = stack_target(settings, gateway, waiting_for)
    target.settle_s = settle_s
    target.saga = saga
    results = []
    for item in loaded:
        out.print(f"[bold]{item.name}[/] [dim]({item.path})[/]")
        result = asyncio.run(run_scenario(item, target))
        results.append(result)
        many = len(result.orders) > 5  # then one line an order, the timelines in the bundle
        for order, timeline in result.orders.items():
            out.print(f"  order {order}: {timeline.outcome or 'not over'}")
            if not many:
                out.print(render_timeline(timeline), markup=False, highlight=False)
        if result.passed and result.as_expected:
            out.print(f"  [green]passed[/] in {result.seconds:.1f} s")
        elif result.expected_failure:
            out.print(f"  [yellow]failed as expected[/] in {result.seconds:.1f} s")
            out.print(result.failure, markup=False, highlight=False)
        else:
            out.print(f"  [red]{result.verdict}[/] in {result.seconds:.1f} s")
            out.print(result.verdict_text, markup=False, highlight=False)
            if bundle is not None and not result.passed:
                from shopctl.scenario.bundle import write_failure_bundle

                folder = write_failure_bundle(result, bundle, current_runtime(settings))
                out.print(f"  bundle: {folder}")
    return results
