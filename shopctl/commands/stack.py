"""The stack's commands: start it, stop it, look at it, control one part."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shopctl import __version__
from shopctl.commands.common import (
    PartArgument,
    RuntimeChoice,
    SagaChoice,
    broker_url,
    exclusive,
    out,
    saga_mode,
)
from shopctl.doctor import run_checks
from shopctl.errors import ShopError, UsageError
from shopctl.runtimes.select import current_runtime, select_runtime
from shopctl.settings import SandboxSettings
from shopctl.stack import PARTS
from shopctl.ui import LogPrinter, UpDisplay, status_table, summary

app = typer.Typer()


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
    from services.common.asyncapi import asyncapi_document

    out.print_json(json.dumps(asyncapi_document()))


@app.command()
def compose() -> None:
    """Print the docker-compose file of the stack (compose/docker-compose.yml)."""
    from shopctl.runtimes.compose import render

    sys.stdout.write(render())


@app.command()
def seed(
    gateway: Annotated[
        str | None,
        typer.Option(help="the gateway's URL [default: the sandbox's, SHOP_GATEWAY_PORT]"),
    ] = None,
    admin_email: Annotated[
        str, typer.Option(envvar="SHOP_ADMIN_EMAIL", help="admin login")
    ] = "admin@shop.local",
    admin_password: Annotated[
        str, typer.Option(envvar="SHOP_ADMIN_PASSWORD", help="admin password")
    ] = "admin",
) -> None:
    """Load the demo catalog: a dozen products with stock."""
    from shopctl.demo import load_demo_catalog

    if gateway is None:  # the sandbox's own port, as `up` printed it
        gateway = f"http://127.0.0.1:{SandboxSettings().gateway_port}"
    result = load_demo_catalog(gateway, admin_email, admin_password)
    out.print(
        f"[green]demo catalog loaded:[/] {len(result.created)} created, "
        f"{len(result.existing)} already there"
    )


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
    saga: Annotated[
        SagaChoice | None,
        typer.Option(
            help="how the order service runs new orders: by events (choreographed, the "
            "default) or by its orchestrator's commands (docs/saga.md)"
        ),
    ] = None,
    rabbitmq_nodes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=5,
            help="docker runtime: RabbitMQ as a cluster of this many nodes; with 3, one can "
            "stop and the quorum queues go on (docs/kubernetes.md)",
        ),
    ] = None,
) -> None:
    """Start the stack and wait until every part is ready."""
    asked: dict[str, str | int] = {}
    if replicas is not None:
        asked["replicas"] = replicas
    if rabbitmq_nodes is not None:
        if runtime == "local" and rabbitmq_nodes > 1:
            raise UsageError(
                "--rabbitmq-nodes: the local runtime uses this machine's one RabbitMQ",
                hint="use --runtime docker for a broker cluster",
            )
        asked["rabbitmq_nodes"] = rabbitmq_nodes
    if saga is not None:
        asked["saga"] = saga.value
    settings = SandboxSettings(**asked)  # type: ignore[arg-type]
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
    running = saga_mode(chosen)
    if report.already_running and running is not None and running != settings.saga:
        raise UsageError(
            f"the running stack's order service runs its sagas {running}, not {settings.saga}",
            hint=f"switch with `shopctl down` then `shopctl up --saga {settings.saga}` (orders "
            "keep the mode they started in; `scenario run --saga` switches for its run alone)",
        )
    out.print()
    extra = {}
    if chosen.name == "docker":
        extra["rabbitmq management"] = f"http://127.0.0.1:{settings.rabbitmq_management_port}"
        extra["rabbitmq (AMQP)"] = chosen.broker_url()
    out.print(summary(report, settings.admin_notice(), extra))
    print_mode(settings)


def print_mode(settings: SandboxSettings) -> None:
    """Sandbox mode said plainly (its secrets are everyone's)."""
    notice = settings.mode_notice()
    out.print(f"[yellow]{notice}[/]" if settings.fault_injection else notice, highlight=False)


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
    mode = saga_mode(chosen)
    if mode is not None:
        out.print(f"sagas: {mode} [dim](docs/saga.md)[/]")
    print_mode(settings)
    budget = chosen.budget_line()
    if budget:
        out.print(f"[dim]database connections: {budget}[/]")
    prometheus = chosen.prometheus_url()
    if prometheus is not None:
        from shopctl.runtimes.prometheus import describe_alert, firing_alerts

        out.print(f"prometheus: {prometheus}")
        alerts = firing_alerts(prometheus)
        for alert in alerts:
            out.print(f"[bold red]alert firing[/] {describe_alert(alert)}", highlight=False)
        if not alerts:
            out.print("[dim]no alert firing[/]")


@app.command()
def logs(
    parts: Annotated[list[str] | None, typer.Argument(help="parts to show (default: all)")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
    order: Annotated[
        str | None,
        typer.Option(
            "--order", help="only the lines of this order (its id or a prefix), every part"
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="one JSON object a line, as the parts wrote them (for jq)"),
    ] = False,
) -> None:
    """The parts' logs, interleaved by time, one colour per part."""
    import orjson

    chosen = current_runtime(SandboxSettings())
    names = list(parts or [])
    for name in names:
        if name not in {p.name for p in PARTS} | set(chosen.infrastructure()):
            known = ", ".join([*chosen.infrastructure(), *(p.name for p in PARTS)])
            raise UsageError(f"no part named {name!r}; the parts are {known}")
    printer = LogPrinter(out, names or [*chosen.infrastructure(), *(p.name for p in PARTS)])
    last: dict[str, Any] | None = None  # a record with a traceback comes as several lines
    try:
        for line in chosen.logs(names, follow):
            if order is not None and not (line.order or "").startswith(order):
                continue
            if not as_json:
                printer.print(line)
            elif line.record is None or line.record is not last:
                last = line.record
                print(orjson.dumps(line.as_json()).decode(), flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass


CONTROLS = {
    "restart": "Restart one part (or the broker) and wait until it is ready again.",
    "stop": "Stop one part; its messages wait on its queues.",
    "start": "Start a stopped part and wait until it is ready.",
    "pause": "Freeze one part (SIGSTOP, docker pause): connections open, nothing handled.",
    "resume": "Let a paused part run again.",
}


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


def _controller(action: str) -> Any:
    def command(part_name: PartArgument) -> None:
        _control(action, part_name)

    command.__doc__ = CONTROLS[action]
    return command


for _action in CONTROLS:
    app.command(_action)(_controller(_action))


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
