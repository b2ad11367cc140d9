"""The shopctl command line: parses, calls the library, prints."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Coroutine
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shopctl import __version__
from shopctl.doctor import run_checks
from shopctl.errors import ShopError, UsageError
from shopctl.runtimes.lock import sandbox_lock
from shopctl.runtimes.select import current_runtime, select_runtime
from shopctl.settings import SandboxSettings
from shopctl.stack import PARTS, part, replica_of
from shopctl.ui import LogPrinter, UpDisplay, status_table, summary

T = TypeVar("T")

app = typer.Typer(
    name="shopctl",
    help="Start, break and watch the shop stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"shopctl {__version__}")


@app.command()
def doctor() -> None:
    """Check what the sandbox needs on this machine and say how to get what is missing."""
    checks = run_checks(SandboxSettings())
    table = Table("check", "status", "detail", "how to fix")
    for check in checks:
        status = (
            "[green]ok[/]"
            if check.ok
            else ("[yellow]optional[/]" if check.optional else "[red]missing[/]")
        )
        table.add_row(check.name, status, check.detail, "" if check.ok else check.fix)
    out.print(table)
    if not all(c.ok or c.optional for c in checks):
        raise ShopError("some requirements are missing; see the table above")


@app.command()
def catalog() -> None:
    """Print the event catalog (AsyncAPI 3.0, JSON) generated from the event models."""
    from services.common.catalog import asyncapi_document

    out.print_json(json.dumps(asyncapi_document()))


@app.command()
def compose() -> None:
    """Print the docker-compose file of the stack (compose/docker-compose.yml)."""
    from shopctl.runtimes.compose import render

    sys.stdout.write(render())


@app.command()
def seed(
    gateway: Annotated[str, typer.Option(help="the gateway's URL")] = "http://127.0.0.1:8080",
    admin_email: Annotated[
        str, typer.Option(envvar="SHOP_ADMIN_EMAIL", help="admin login")
    ] = "admin@shop.local",
    admin_password: Annotated[
        str, typer.Option(envvar="SHOP_ADMIN_PASSWORD", help="admin password")
    ] = "admin",
) -> None:
    """Load the demo catalog: a dozen products with stock."""
    from shopctl.demo import load_demo_catalog

    result = load_demo_catalog(gateway, admin_email, admin_password)
    out.print(
        f"[green]demo catalog loaded:[/] {len(result.created)} created, "
        f"{len(result.existing)} already there"
    )


RuntimeChoice = Annotated[
    str,
    typer.Option(
        "--runtime",
        "-r",
        help="docker, local, or auto (docker when an engine answers, else local)",
        envvar="SHOP_RUNTIME",
    ),
]


@app.command()
def up(
    runtime: RuntimeChoice = "auto",
    build: Annotated[bool, typer.Option("--build", help="rebuild the images first")] = False,
    replicas: Annotated[
        str | None,
        typer.Option(
            help="more processes of a service on the same queues, e.g. inventory=2,payment=2 "
            "(processes on the local runtime, containers on docker)"
        ),
    ] = None,
) -> None:
    """Start the stack and wait until every part is ready."""
    settings = SandboxSettings() if replicas is None else SandboxSettings(replicas=replicas)
    settings.replica_counts()  # a bad --replicas is a usage error before anything starts
    chosen = select_runtime(runtime, settings)
    parts = [*chosen.infrastructure(), *(p.name for p in PARTS)]
    reason = getattr(chosen, "chosen_because", "")
    out.print(
        f"starting the stack on the [bold]{chosen.name}[/] runtime"
        + (f" [dim](not docker: {reason})[/]" if reason else "")
    )
    with exclusive(settings, "up"), UpDisplay(out, parts) as display:
        report = chosen.up(display.update, build=build)
    out.print()
    extra = {}
    if chosen.name == "docker":
        extra["rabbitmq management"] = f"http://127.0.0.1:{settings.rabbitmq_management_port}"
        extra["rabbitmq (AMQP)"] = chosen.broker_url()
    out.print(summary(report, settings.admin_notice(), extra))


@app.command()
def down(
    volumes: Annotated[
        bool, typer.Option("--volumes", "-v", help="also remove the data (volumes, databases)")
    ] = False,
) -> None:
    """Stop the stack and remove exactly what this project started."""
    settings = SandboxSettings()
    with exclusive(settings, "down"):
        removed = current_runtime(settings).down(volumes=volumes)
    if removed:
        out.print(f"[green]stopped[/] {', '.join(removed)}")
    else:
        out.print("nothing was running")


@app.command()
def status() -> None:
    """A table of the stack's parts: state, health, port, uptime."""
    settings = SandboxSettings()
    chosen = current_runtime(settings)
    rows = chosen.status()
    out.print(status_table(rows))
    gateway = next((r for r in rows if r.name == "gateway"), None)
    if gateway is not None and gateway.state == "running":
        from shopctl.frontend import served_dir

        if chosen.name == "docker" or served_dir() is not None:
            out.print(f"frontend: http://127.0.0.1:{settings.gateway_port}/")
    budget = chosen.budget_line()
    if budget:
        out.print(f"[dim]database connections: {budget}[/]")


@app.command()
def logs(
    parts: Annotated[list[str] | None, typer.Argument(help="parts to show (default: all)")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
) -> None:
    """The parts' logs, interleaved by time, one colour per part."""
    chosen = current_runtime(SandboxSettings())
    names = list(parts or [])
    for name in names:
        if name not in {p.name for p in PARTS} | set(chosen.infrastructure()):
            known = ", ".join([*chosen.infrastructure(), *(p.name for p in PARTS)])
            raise UsageError(f"no part named {name!r}; the parts are {known}")
    printer = LogPrinter(out, names or [*chosen.infrastructure(), *(p.name for p in PARTS)])
    try:
        for line in chosen.logs(names, follow):
            printer.print(line)
    except KeyboardInterrupt:
        pass


PartArgument = Annotated[
    str, typer.Argument(metavar="PART", help="a part of the stack (restart also takes broker)")
]


def _control(action: str, name: str) -> None:
    from shopctl.runtimes.control import check, control

    check(action, name)  # an unknown name is a usage error before anything happens
    settings = SandboxSettings()
    chosen = current_runtime(settings)
    shown = "rabbitmq" if name == "broker" else name
    with exclusive(settings, action):
        if action in ("restart", "start"):
            with UpDisplay(out, [shown]) as display:
                control(chosen, action, name, display.update)
        else:
            control(chosen, action, name, lambda *_: None)
    done = {"stop": "stopped", "pause": "paused", "resume": "resumed"}.get(action, "ready")
    out.print(f"{shown} {done}")


@app.command()
def restart(part_name: PartArgument) -> None:
    """Restart one part (or the broker) and wait until it is ready again."""
    _control("restart", part_name)


@app.command()
def stop(part_name: PartArgument) -> None:
    """Stop one part; its messages wait on its queues."""
    _control("stop", part_name)


@app.command()
def start(part_name: PartArgument) -> None:
    """Start a stopped part and wait until it is ready."""
    _control("start", part_name)


@app.command()
def pause(part_name: PartArgument) -> None:
    """Freeze one part (SIGSTOP, docker pause): connections open, nothing handled."""
    _control("pause", part_name)


@app.command()
def resume(part_name: PartArgument) -> None:
    """Let a paused part run again."""
    _control("resume", part_name)


@app.command()
def bench(
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="checkouts a second, paced (open loop)")
    ] = None,
    flood: Annotated[
        bool,
        typer.Option("--flood", help="keep --in-flight orders going, each until it is over"),
    ] = False,
    in_flight: Annotated[
        int,
        typer.Option(
            "--in-flight",
            min=1,
            max=1000,
            help="orders not yet over in a flood (and journeys in the baseline's)",
        ),
    ] = 64,
    duration: Annotated[float, typer.Option(min=1, help="seconds measured")] = 20.0,
    warmup: Annotated[float, typer.Option(min=0, help="seconds of load before measuring")] = 5.0,
    customers: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    mix: Annotated[str, typer.Option(help="weights of the kinds of checkout")] = (
        "happy=90,declined=5,out_of_stock=5"
    ),
    skus: Annotated[int, typer.Option(min=1, max=1000, help="products bought")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    report: Annotated[
        Path | None, typer.Option(help="write an HTML page with charts and the figures here")
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline", help="first measure the bare seven-hop pipeline; print the ratio"
        ),
    ] = False,
) -> None:
    """Checkouts through the gateway, every order followed to its end: orders
    a second, latencies, each saga step, errors, CPU and memory by part."""

    from shopctl.bench.flood import infrastructure_pids, parse_mix, run_bench
    from shopctl.observe.deadletters import dead_letter_queues
    from shopctl.runtimes.processes import url_ready

    if (rate is None) == (not flood):
        raise UsageError("give --rate R or --flood (one of them)")
    weights = parse_mix(mix)
    settings = SandboxSettings()
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    if not url_ready(gateway, "gateway"):
        raise ShopError("the stack is not up", hint="shopctl up")
    chosen = current_runtime(settings)
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    def pids() -> dict[str, list[int]]:
        if chosen.name == "docker":
            from shopctl.runtimes.docker import DockerRuntime

            assert isinstance(chosen, DockerRuntime)
            return chosen.part_pids()  # the containers' processes, not the machine's
        found = infrastructure_pids()
        if chosen.name == "local":
            state = json.loads((settings.state_dir / "local" / "state.json").read_text())
            for name, entry in state["parts"].items():
                # a replica's process is counted with its service, as on docker
                found.setdefault(replica_of(name)[0], []).append(int(entry["pid"]))
        return found

    queues = [q.removesuffix(".dlq") for q in dead_letter_queues()]

    def connections() -> int | None:
        """The stack's sessions on the local runtime's PostgreSQL (None on docker)."""
        if chosen.name != "local":
            return None
        import psycopg

        try:
            with psycopg.connect(settings.pg_admin_url, autocommit=True, connect_timeout=3) as db:
                row = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s",
                    (f"{settings.database_prefix}_%",),
                ).fetchone()
        except psycopg.Error:
            return None
        return int(row[0]) if row else None

    bare = None
    if baseline:
        from shopctl.bench.baseline import Window, measure_baseline
        from shopctl.bench.flood import BARE, cpu_by_part, infrastructure_pids

        err.print("[dim]the bare pipeline first (7 hops, same broker and database)[/]")
        # what the bare pipeline's journeys cost each part of the machine
        window = Window(parts=lambda: cpu_by_part({**infrastructure_pids(), BARE: [os.getpid()]}))
        bare = _on_services_loop(
            measure_baseline(
                chosen.broker_url(),
                settings.pg_admin_url,
                duration_s=min(duration, 15.0),
                in_flight=in_flight,
                progress=lambda text: err.print(f"[dim]{text}[/]"),
                window=window,
            )
        )
    result = _on_services_loop(
        run_bench(
            gateway,
            chosen.broker_url(),
            (settings.admin_email, settings.admin_password),
            rate=rate,
            duration_s=duration,
            warmup_s=warmup,
            customers=customers,
            skus=skus,
            mix=weights,
            pids=pids,
            queue_names=queues,
            in_flight=in_flight,
            connections=connections,
            sample_s=min(10.0, max(2.0, duration / 10)),
            progress=lambda text: err.print(f"[dim]{text}[/]"),
        )
    )
    figures = result.summary()
    if bare is not None:
        from shopctl.bench.flood import MACHINE, busy_share, per_unit_ms

        figures["baseline_per_s"] = round(bare, 1)
        figures["ratio_to_baseline"] = round(figures["completed_per_s"] / bare, 3) if bare else None
        figures["baseline_cpu_ms_a_journey"] = per_unit_ms(window.parts_cpu_s, window.journeys)
        figures["baseline_machine_busy_share"] = busy_share(
            window.parts_cpu_s.get(MACHINE, 0.0), window.wall_s
        )
    if report is not None:
        from shopctl.bench.report import write_report

        write_report(result, figures, report)
        err.print(f"report: {report}")
    if json_out:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    _print_bench(figures)


def _on_services_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run the bench and its baseline on the event loop the services run on
    (uvicorn's uvloop), so the bare pipeline is measured at its best and the
    load takes no more of the shared machine than it must; asyncio's own
    loop where uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(work)
    return uvloop.run(work)


def _print_bench(figures: dict[str, Any]) -> None:
    def ms(values: dict[str, float]) -> str:
        if not values:
            return "-"
        return f"{values['p50']:.0f} / {values['p95']:.0f} / {values['p99']:.0f} ms"

    out.print(
        f"[bold]{figures['mode']}[/], {figures['duration_s']} s measured on {figures['machine']}"
    )
    table = Table("figure", "value")
    table.add_row("completed orders/s", f"[bold]{figures['completed_per_s']}[/]")
    if "baseline_per_s" in figures:
        table.add_row("bare 7-hop pipeline /s", f"{figures['baseline_per_s']}")
        ratio = figures["ratio_to_baseline"]
        table.add_row("ratio to the baseline", f"[bold]{ratio:.0%}[/]" if ratio else "-")
    table.add_row("checkouts sent / accepted", f"{figures['checkouts']} / {figures['accepted']}")
    table.add_row("orders in flight, at most", str(figures["most_in_flight"]))
    table.add_row("outcomes", ", ".join(f"{k}: {v}" for k, v in figures["outcomes"].items()))
    table.add_row("errors", ", ".join(f"{k}: {v}" for k, v in figures["errors"].items()) or "none")
    table.add_row("checkout answer p50/p95/p99", ms(figures["checkout_answer_ms"]))
    table.add_row("checkout to OrderCompleted", ms(figures["checkout_to_completed_ms"]))
    for step, values in figures["steps_ms"].items():
        table.add_row(f"  step to {step}", ms(values))
    out.print(table)
    per_order = figures.get("cpu_ms_per_order") or {}
    parts = Table("part", "CPU s", "CPU ms an order", "memory MB (PSS)")
    for name in sorted(figures["cpu_s"], key=lambda n: -figures["cpu_s"][n]):
        parts.add_row(
            name,
            f"{figures['cpu_s'][name]:.2f}",
            f"{per_order[name]:.1f}" if name in per_order else "-",
            f"{figures['rss_mb'][name]:.0f}",
        )
    out.print(parts)
    if figures.get("baseline_cpu_ms_a_journey") and per_order:
        out.print(_cost_against_bare(figures))
    if figures.get("stack_cpu_ms_per_order"):
        out.print(
            f"stack CPU per order: {figures['stack_cpu_ms_per_order']:.1f} ms "
            "(services, RabbitMQ and PostgreSQL; the load not counted)"
        )
    pauses = figures.get("bench_gc_pauses") or {}
    if pauses.get("n"):
        out.print(
            f"the bench's own garbage collections: {pauses['n']}, longest "
            f"{pauses['longest_ms']:.0f} ms, {pauses['total_ms']:.0f} ms in all"
        )
    queues = figures["queues_at_end"]
    out.print("queues at the end: " + (", ".join(f"{q} {n}" for q, n in queues.items()) or "empty"))
    for key, verdict in figures.get("growth", {}).items():
        colour = "red" if verdict.startswith("GROWS") else "green"
        out.print(f"over the run, {key}: [{colour}]{verdict}[/]")


def _cost_against_bare(figures: dict[str, Any]) -> Table:
    """An order's CPU by part of the machine beside a bare journey's: where
    the ratio goes."""
    from shopctl.bench.flood import BARE, LOAD, MACHINE, OTHERS

    bare, order = figures["baseline_cpu_ms_a_journey"], figures["cpu_ms_per_order"]
    infrastructure = ("rabbitmq", "postgresql")
    python = sum(v for k, v in order.items() if k not in (*infrastructure, LOAD, MACHINE, OTHERS))

    def share(key: str) -> str:
        value = figures.get(key)
        return f" ({value:.0%} busy)" if value else ""

    table = Table(
        "machine CPU, ms",
        "a bare journey" + share("baseline_machine_busy_share"),
        "an order" + share("machine_busy_share"),
        title="what an order costs the machine, beside a bare journey",
    )
    for name in infrastructure:
        table.add_row(name, f"{bare.get(name, 0):.1f}", f"{order.get(name, 0):.1f}")
    table.add_row(
        "the Python: the bare pipeline / the services", f"{bare.get(BARE, 0):.1f}", f"{python:.1f}"
    )
    table.add_row("the load (the bench)", "-", f"{order.get(LOAD, 0):.1f}")
    table.add_row(OTHERS, f"{bare.get(OTHERS, 0):.1f}", f"{order.get(OTHERS, 0):.1f}")
    table.add_row(
        f"[bold]{MACHINE}[/]",
        f"[bold]{bare.get(MACHINE, 0):.1f}[/]",
        f"[bold]{order.get(MACHINE, 0):.1f}[/]",
    )
    return table


@app.command()
def trace(
    order: Annotated[str | None, typer.Option(help="only this order (a prefix of its id)")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="only this event type (or retry, dead_letter)")
    ] = None,
    part_name: Annotated[
        str | None, typer.Option("--part", help="only what this part emitted or failed")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="first replay this much history (30s, 5m, 1h)")
    ] = None,
    until_terminal: Annotated[
        bool, typer.Option("--until-terminal", help="with --order: stop when the order ends")
    ] = False,
    seconds: Annotated[
        float | None, typer.Option("--for", min=0, help="stop after this many seconds")
    ] = None,
) -> None:
    """Follow every order's saga live from the bus: one line an event, with
    compensations, retries, republished events and dead letters in colour."""
    import asyncio

    from shopctl.observe.trace import Filters, parse_duration

    if part_name is not None:
        part(part_name)
    if until_terminal and not order:
        raise UsageError("--until-terminal needs --order")
    history_s = parse_duration(since) if since else None
    filters = Filters(order, type_, part_name)
    settings = SandboxSettings()
    chosen = current_runtime(settings)
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    with suppress(KeyboardInterrupt):
        asyncio.run(_trace(chosen, filters, history_s, until_terminal, seconds))


async def _trace(
    chosen: Any,
    filters: Any,
    history_s: float | None,
    until_terminal: bool,
    seconds: float | None,
) -> None:
    import asyncio

    from shopctl.observe.outboxes import outbox_events
    from shopctl.observe.timeline import Tap, TimelineEvent, TimelineStore, parse_event
    from shopctl.observe.trace import trace_line

    url = chosen.broker_url()
    shown = TimelineStore()
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    history: set[str] = set()

    def show(item: Any) -> None:
        if isinstance(item, TimelineEvent):
            item = shown.add(item)
        else:
            shown.add_incident(item)
        if filters.accept(item):
            out.print(trace_line(shown, item), highlight=False, soft_wrap=True)

    def ended() -> bool:
        return any(
            t.outcome is not None
            for cid, t in shown.timelines.items()
            if cid.startswith(filters.order or "")
        )

    async with Tap(url, on_event=arrived.put_nowait):
        err.print(f"[dim]tracing {url.split('@')[-1]}; Ctrl-C to stop[/]")
        if history_s is not None:
            rows, problems = await asyncio.to_thread(outbox_events, chosen, history_s)
            for problem in problems:
                err.print(f"[yellow]history incomplete: {problem}[/]")
            for key, body in rows:
                event = parse_event(body, key, seen_at=0.0)
                if event is not None:
                    history.add(event.id)
                    show(event)
            err.print(f"[dim]{len(history)} events from the last {history_s:g} s; live now[/]")
        deadline = None if seconds is None else asyncio.get_running_loop().time() + seconds
        while not (until_terminal and ended()):
            left = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if left is not None and left <= 0:
                break
            try:
                item = await asyncio.wait_for(arrived.get(), timeout=left)
            except TimeoutError:
                break
            if isinstance(item, TimelineEvent) and item.id in history:
                history.discard(item.id)  # seen in the outbox already
                continue
            show(item)


@app.command()
def why(
    order: Annotated[
        str, typer.Argument(metavar="ORDER", help="the order's id, or its first 8 characters")
    ],
) -> None:
    """Why an order is where it is: for one not over, the step it waits on,
    where the awaited event is and what would move it on; for one over, the
    path it took and why it ended so."""
    from shopctl.observe.timeline import render_timeline
    from shopctl.observe.why import explain

    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    explanation = explain(current_runtime(SandboxSettings()), order)
    out.print(f"[bold]{explanation.headline}[/]", highlight=False)
    out.print(render_timeline(explanation.timeline), markup=False, highlight=False)
    out.print("[bold]why:[/]" if explanation.timeline.outcome else "[bold]where it is:[/]")
    for finding in explanation.findings:
        out.print(f"  • {finding.text}", markup=False, highlight=False)
    for note in explanation.notes:
        out.print(f"  [dim]{note}[/]", highlight=False)
    if explanation.commands:
        out.print("[bold]to move it on:[/]")
        for command in dict.fromkeys(explanation.commands):
            out.print(f"  {command}", markup=False, highlight=False)


@app.command()
def tui(
    scenarios: Annotated[
        Path, typer.Option(help="the folder of scenarios its Scenarios pane lists")
    ] = Path("scenarios"),
) -> None:
    """The TUI: parts, live events, orders and their sagas, dead letters,
    scenarios, fault switches (Textual, started as its own process)."""
    import os

    # shopctl never imports Textual: the TUI runs as `python -m tui`
    os.execv(sys.executable, [sys.executable, "-m", "tui", str(scenarios)])


@app.command()
def inject(
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="e.g. OrderCreated")],
    data: Annotated[str, typer.Option("--data", "-d", help="the event's data, JSON")],
    correlation: Annotated[
        str | None, typer.Option(help="the saga's id (default: data's order_id)")
    ] = None,
) -> None:
    """Publish one event into shop.events, checked against its model."""
    from shopctl.inject import build_event
    from shopctl.inject import inject as publish_event

    event = build_event(event_type, data, correlation)
    publish_event(broker_url(), event)
    out.print(
        f"[green]published[/] {event.type} {event.id} "
        f"(routing key {event.routing_key}, saga {event.correlationid})"
    )


fault = typer.Typer(help="Faults at the message level (sandbox mode only).", no_args_is_help=True)
app.add_typer(fault, name="fault")
KINDS = "delay, fail, crash, lose_ack, duplicate, drop, hold, publish_twice"


@fault.command("set")
def fault_set(
    part_name: Annotated[str, typer.Argument(metavar="PART")],
    event: Annotated[str, typer.Argument(metavar="EVENT", help="event type, e.g. StockReserved")],
    kind: Annotated[str, typer.Argument(metavar="KIND", help=KINDS)],
    order: Annotated[
        str | None, typer.Option(help="only this order's saga: its id, or its first 8 characters")
    ] = None,
    times: Annotated[int | None, typer.Option(min=1, help="only this many messages")] = None,
    ms: Annotated[int, typer.Option(min=0, help="delay: milliseconds")] = 0,
    until: Annotated[str | None, typer.Option(help="hold: until this event has passed")] = None,
    next_sagas: Annotated[
        int | None, typer.Option("--next", min=1, help="only the next N sagas each process sees")
    ] = None,
    sku: Annotated[str | None, typer.Option(help="only sagas whose event carries this SKU")] = None,
    at: Annotated[
        str, typer.Option(help="crash: before_handler, or after_commit (committed, never acked)")
    ] = "before_handler",
) -> None:
    """Switch a fault on in every process of PART."""
    from pydantic import ValidationError

    from services.common.events import EVENT_MODELS
    from services.common.faults import FaultSpec, refusal
    from shopctl.fault_switch import switch_on

    part(part_name)
    for name in (event, until):
        if name is not None and name not in EVENT_MODELS:
            raise UsageError(f"no event type {name!r}")
    try:
        spec = FaultSpec(
            part=part_name,
            event=event,
            kind=kind,
            order=order,
            times=times,
            ms=ms,
            until=until,
            next=next_sagas,
            sku=sku,
            at=at,
        )
    except ValidationError as exc:
        raise UsageError(refusal(exc)) from None
    switch_on(broker_url(), spec)
    out.print(
        f"[yellow]fault {spec.id} on[/]: {part_name} {kind} {event}"
        + (f" of {order}" if order else "")
        + (f", {times} times" if times else "")
    )


@fault.command("clear")
def fault_clear(
    part_name: Annotated[str, typer.Argument(metavar="PART")],
    fault_id: Annotated[str | None, typer.Option("--id", help="only this fault")] = None,
) -> None:
    """Switch PART's faults off (or one of them)."""
    from shopctl.fault_switch import switch_off

    part(part_name)
    switch_off(broker_url(), part_name, fault_id)
    out.print(f"[green]faults off[/] on {part_name}" + (f" ({fault_id})" if fault_id else ""))


scenario = typer.Typer(help="Scenario files: run, check, list.", no_args_is_help=True)
app.add_typer(scenario, name="scenario")
Targets = Annotated[
    list[Path], typer.Argument(metavar="FILES|DIRS", help="scenario files or folders")
]


@scenario.command("check")
def scenario_check(targets: Targets) -> None:
    """Validate scenario files (YAML and schema) without running them."""
    from shopctl.scenario.loading import load, scenario_files

    for path in scenario_files(targets):
        out.print(f"[green]ok[/] {path}: {load(path).name}")


@scenario.command("list")
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


@scenario.command("run")
def scenario_run(
    targets: Targets,
    junit: Annotated[Path | None, typer.Option(help="write a JUnit XML report here")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="for each failure, a folder of what it saw here")
    ] = None,
    runtime: RuntimeChoice = "auto",
    keep_up: Annotated[
        bool, typer.Option("--keep-up", help="leave a stack started for this run up")
    ] = False,
    settle: SettleOption = 15.0,
) -> None:
    """Run scenarios against the stack (started first when it is not up, and
    stopped after unless --keep-up); exit 1 when any fails."""
    from shopctl.runtimes.processes import url_ready
    from shopctl.scenario.execute import write_junit
    from shopctl.scenario.loading import load, scenario_files

    loaded = [load(path) for path in scenario_files(targets)]  # every file checked first
    # a broker restart is a step here: the tap's reconnects are the journal's
    # business, not tracebacks on the terminal
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    settings = SandboxSettings()
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    started_here = not url_ready(gateway, "gateway")
    if started_here:
        up(runtime=runtime, build=False)
    try:
        results = _run_scenarios(loaded, settings, gateway, bundle, settle)
    finally:
        if started_here and not keep_up:
            out.print("[dim]stopping the stack this run started (--keep-up leaves it up)[/]")
            down(volumes=False)
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


@scenario.command("fuzz")
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
    keep_up: Annotated[
        bool, typer.Option("--keep-up", help="leave a stack started for this run up")
    ] = False,
    settle: SettleOption = 8.0,
) -> None:
    """Random fault schedules over a checkout's saga (Hypothesis), the
    invariants as the oracle; a failure is shrunk and written out as a
    scenario file. Exit 1 when one is found."""
    from shopctl.runtimes.processes import url_ready
    from shopctl.scenario.fuzz import KINDS, executor, fuzz, write_scenario

    chosen_parts = [p.strip() for p in parts.split(",") if p.strip()]
    for name in chosen_parts:
        part(name)
    chosen_kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen_kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown fault kind {unknown[0]!r}; use {', '.join(KINDS)}")
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    settings = SandboxSettings()
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    started_here = not url_ready(gateway, "gateway")
    if started_here:
        up(runtime=runtime, build=False)

    def shown(index: int, schedule: Any, result: Any, shrinking: bool) -> None:
        verdict = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
        stage = "shrink" if shrinking else "run"
        out.print(f"{stage} {index:>3}: {verdict} {result.seconds:5.1f} s  {schedule.describe()}")
        if not result.passed:
            out.print(f"          {result.failure.splitlines()[0]}", markup=False)

    try:
        target = _scenario_target(settings, gateway)
        target.settle_s = settle
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
    finally:
        if started_here and not keep_up:
            out.print("[dim]stopping the stack this run started (--keep-up leaves it up)[/]")
            down(volumes=False)
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


def _scenario_target(settings: SandboxSettings, gateway: str) -> Any:
    from shopctl.scenario.runner import Target

    def control_part(action: str, name: str) -> None:
        from shopctl.runtimes.control import control

        with exclusive(settings, action):
            control(current_runtime(settings), action, name, lambda *_: None)

    def unready() -> list[str]:
        return [s.name for s in current_runtime(settings).status() if s.health != "ready"]

    # A gateway that answers while this sandbox's runtime runs no part is a
    # stack of someone else's (a test's, another tool's): its parts cannot be
    # controlled from here, nor waited on
    managed = any(s.state == "running" for s in current_runtime(settings).status())
    return Target(
        gateway,
        broker_url(),
        (settings.admin_email, settings.admin_password),
        control_part if managed else None,
        unready if managed else None,
        settings.ready_timeout_s,
    )


def _run_scenarios(
    loaded: list[Any],
    settings: SandboxSettings,
    gateway: str,
    bundle: Path | None,
    settle_s: float,
) -> list[Any]:
    import asyncio

    from shopctl.observe.timeline import render_timeline
    from shopctl.scenario.execute import run_scenario

    target = _scenario_target(settings, gateway)
    target.settle_s = settle_s
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
                folder = write_failure_bundle(result, bundle, settings)
                out.print(f"  bundle: {folder}")
    return results


dlq = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")
QueueArgument = Annotated[str, typer.Argument(metavar="QUEUE", help="a dead-letter queue (*.dlq)")]


@dlq.command("list")
def dlq_list() -> None:
    """Messages waiting in each dead-letter queue of the stack."""
    from shopctl.observe.deadletters import depths, run

    found = run(depths(broker_url()))
    table = Table("dead-letter queue", "messages")
    for queue, count in found.items():
        shown = "[dim]not declared[/]" if count is None else (f"[red]{count}[/]" if count else "0")
        table.add_row(queue, shown)
    out.print(table)
    total = sum(c or 0 for c in found.values())
    out.print(f"{total} dead letter{'s' if total != 1 else ''}")


@dlq.command("show")
def dlq_show(
    queue: QueueArgument,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="how many")] = 10,
) -> None:
    """The first dead letters of QUEUE, with why each died (left in place)."""
    from shopctl.observe.deadletters import run, show

    letters = run(show(broker_url(), queue, limit))
    if not letters:
        out.print(f"{queue} is empty")
        return
    for letter in letters:
        out.print(
            f"[bold]{letter.type or '?'}[/] {letter.message_id or ''} from [cyan]{letter.origin}[/]"
            f"\n  reason: [red]{letter.reason or '?'}[/]  attempts: {letter.attempts}"
            f"  at: {letter.dead_lettered_at or '?'}\n  error: {letter.error or '-'}"
            f"\n  body: {letter.body[:300].decode(errors='replace')}"
        )


@dlq.command("replay")
def dlq_replay(
    queue: QueueArgument,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
) -> None:
    """Put QUEUE's dead letters back on the queues they died on."""
    from shopctl.observe.deadletters import replay, run

    replayed = run(replay(broker_url(), queue, limit))
    origins = sorted({letter.origin for letter in replayed})
    out.print(
        f"[green]replayed {len(replayed)}[/]" + (f" to {', '.join(origins)}" if origins else "")
    )


@dlq.command("purge")
def dlq_purge(
    queue: QueueArgument,
    yes: Annotated[bool, typer.Option("--yes", help="really drop them")] = False,
) -> None:
    """Drop every dead letter of QUEUE."""
    from shopctl.observe.deadletters import purge, run

    if not yes:
        raise UsageError(f"purging drops {queue}'s dead letters for good; add --yes")
    out.print(f"[yellow]purged {run(purge(broker_url(), queue))}[/] from {queue}")


def write_failure_bundle(result: Any, directory: Path, settings: SandboxSettings) -> Path:
    """The failed scenario's bundle: its timelines, journal, outbox rows,
    log lines, dead letters."""
    from shopctl.observe.deadletters import depths, run, show
    from shopctl.observe.outboxes import outbox_rows
    from shopctl.scenario.bundle import write_bundle

    chosen = current_runtime(settings)
    url = chosen.broker_url()
    waiting = [q for q, n in run(depths(url)).items() if n]
    letters = [letter for queue in waiting for letter in run(show(url, queue, 10))]
    outboxes = {order: outbox_rows(chosen, order) for order in result.orders}
    return write_bundle(result, directory, chosen.logs([], follow=False), letters, outboxes)


def broker_url() -> str:
    """The running stack's broker, as this machine reaches it."""
    return current_runtime(SandboxSettings()).broker_url()


def exclusive(settings: SandboxSettings, command: str) -> AbstractContextManager[None]:
    """The sandbox's lock for a command that starts or stops parts."""

    def waiting(holder: str) -> None:
        err.print(f"[yellow]waiting for {holder} to finish[/]")

    return sandbox_lock(settings.state_dir, command, settings.lock_wait_s, waiting)


def main() -> None:
    """Entry point: usage errors exit 2 (Typer's own handling); errors people
    can fix are one red line, an optional hint and their exit code."""
    try:
        app()
    except ShopError as exc:
        # as written (a file's brackets are not markup) and unwrapped (file:line: ...)
        err.print(f"[red]error:[/] {escape(exc.message)}", soft_wrap=True, highlight=False)
        if exc.hint:
            err.print(f"[dim]hint: {escape(exc.hint)}[/]", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
