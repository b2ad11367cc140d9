"""`shopctl bench`: checkouts through the gateway, and the figures printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shopctl.commands.common import SagaChoice, err, out, saga_mode
from shopctl.errors import ShopError, UsageError
from shopctl.runtimes.base import Runtime
from shopctl.runtimes.select import current_runtime
from shopctl.settings import SandboxSettings

if TYPE_CHECKING:  # the bench's modules load aiohttp and more: only when it runs
    from shopctl.bench.flood import Figures

app = typer.Typer()


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
    saga: Annotated[
        SagaChoice | None,
        typer.Option(
            help="run the orders in this saga mode (the order service is switched for the "
            "run and back after; docs/saga.md); default: the stack's own"
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="the consumers' batch size for the run (1: one message a transaction; "
            "switched back after, sandbox mode); default: the services' own",
        ),
    ] = None,
) -> None:
    """Checkouts through the gateway, every order followed to its end: orders
    a second, latencies, each saga step, errors, CPU and memory by part."""
    from shopctl.bench.flood import parse_mix
    from shopctl.bench.session import bench_stack
    from shopctl.runtimes.processes import url_ready

    if (rate is None) == (not flood):
        raise UsageError("give --rate R or --flood (one of them)")
    weights = parse_mix(mix)
    settings = SandboxSettings()
    if not url_ready(f"http://127.0.0.1:{settings.gateway_port}", "gateway"):
        raise ShopError("the stack is not up", hint="shopctl up")
    from shopctl.amqp import quiet_broker_clients

    quiet_broker_clients()
    chosen = current_runtime(settings)
    with (
        saga_for_run(chosen, saga.value if saga else None) as mode,
        batch_for_run(chosen, batch) as batches,
        _queue_depths(chosen, settings, flood) as depths,
    ):
        result, figures = bench_stack(
            settings,
            chosen,
            rate=rate,
            in_flight=in_flight,
            duration_s=duration,
            warmup_s=warmup,
            customers=customers,
            skus=skus,
            mix=weights,
            baseline=baseline,
            progress=lambda text: err.print(f"[dim]{text}[/]"),
        )
    figures["saga"] = mode
    figures["batches"] = batches()
    if depths is not None:
        figures["keda"] = depths.figures()
    if report is not None:
        from shopctl.bench.report import write_report

        write_report(result, figures, report)
        err.print(f"report: {report}")
    if json_out:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return
    _print_bench(figures)


@contextmanager
def _queue_depths(chosen: Runtime, settings: SandboxSettings, flood: bool) -> Iterator[Any]:
    """In a flood: the consumers' queue depths read every second, and the
    replicas KEDA would give each consumer (deploy/kubernetes) on them."""
    if not flood:
        yield None
        return
    from urllib.parse import unquote, urlsplit

    from shopctl.k8s.scaling import DepthSampler
    from shopctl.runtimes.prometheus import RABBITMQ_METRICS_PORT

    broker = urlsplit(chosen.broker_url())
    vhost = unquote(broker.path[1:]) or "/"
    if chosen.name == "docker":  # its management API is published, its plugin's port is not
        source = f"http://guest:guest@127.0.0.1:{settings.rabbitmq_management_port}/api"
    else:
        source = f"http://{broker.hostname}:{RABBITMQ_METRICS_PORT}"
    with DepthSampler(source, vhost) as sampler:
        yield sampler


CONSUMERS = ("order", "inventory", "payment", "shipping")


@contextmanager
def batch_for_run(chosen: Runtime, asked: int | None) -> Iterator[Callable[[], dict[str, Any]]]:
    """The consumers' batch size switched for the run (their tuning, sandbox
    mode) and back after; yields what reads the batches they made."""
    import asyncio

    from services.common.faults import FaultCommand
    from shopctl.fault_switch import send

    def seen() -> dict[str, Any]:
        found = {}
        for name in CONSUMERS:
            answer = chosen.inflight(name)
            if answer and "batches" in answer:
                found[name] = answer["batches"]
        return found

    before = seen()

    def tune(sizes: dict[str, int]) -> None:
        async def send_all() -> None:
            for name, size in sizes.items():
                command = FaultCommand(action="tune", tuning={"batch_max": float(size)})
                await send(chosen.broker_url(), name, command)

        asyncio.run(send_all())

    if asked is not None:
        tune(dict.fromkeys(CONSUMERS, asked))
    try:
        yield lambda: {
            name: {
                **after,
                # this run's batches alone: the counters minus those before it
                "acks": after["acks"] - before.get(name, {}).get("acks", 0),
                "acked": after["acked"] - before.get(name, {}).get("acked", 0),
            }
            for name, after in seen().items()
        }
    finally:
        if asked is not None:
            tune({name: int(b["batch_max"]) for name, b in before.items()})


@contextmanager
def saga_for_run(chosen: Runtime, asked: str | None) -> Iterator[str]:
    """The order service switched to the saga mode asked for the run (its
    tuning, sandbox mode), and back after; yields the mode the orders run in."""
    import asyncio

    from services.common.faults import FaultCommand
    from shopctl.fault_switch import send

    running = saga_mode(chosen) or "choreographed"
    if asked is None or asked == running:
        yield running
        return

    def tune(mode: str) -> None:
        tuning = {"saga_orchestrated": float(mode == "orchestrated")}
        asyncio.run(send(chosen.broker_url(), "order", FaultCommand(action="tune", tuning=tuning)))

    tune(asked)
    try:
        yield asked
    finally:
        tune(running)


def _print_bench(figures: Figures) -> None:
    def ms(values: dict[str, float]) -> str:
        if not values:
            return "-"
        return f"{values['p50']:.0f} / {values['p95']:.0f} / {values['p99']:.0f} ms"

    saga = f", sagas {figures['saga']}" if figures.get("saga") else ""
    out.print(
        f"[bold]{figures['mode']}[/]{saga}, {figures['duration_s']} s measured on "
        f"{figures['machine']}"
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
    if figures.get("messages_per_order"):
        table.add_row(
            "messages / deliveries an order",
            f"{figures['messages_per_order']:.1f} / {figures.get('deliveries_per_order') or 0:.1f}",
        )
    table.add_row("checkout answer p50/p95/p99", ms(figures["checkout_answer_ms"]))
    table.add_row("checkout to OrderCompleted", ms(figures["checkout_to_completed_ms"]))
    for step, values in figures["steps_ms"].items():
        table.add_row(f"  step to {step}", ms(values))
    out.print(table)
    batches = figures.get("batches") or {}
    if batches:
        out.print(
            "batches (the last 1,000 a consumer made): "
            + ", ".join(
                f"{name} {b['batch_max']} at most, {b['mean'] or '-'} on average"
                f" ({b['acked']} acked in {b['acks']} frames)"
                for name, b in batches.items()
            ),
            soft_wrap=True,
        )
    keda = figures.get("keda")
    if keda:
        out.print(
            f"KEDA's rule on these queues (deploy/kubernetes): replicas = {keda['rule']}, "
            f"{keda['samples']} readings of the broker's depths a second apart"
        )
        scaled = Table("consumer", "deepest (ready + unacked)", "replicas KEDA would ask")
        for service, peak in keda["peak"].items():
            scaled.add_row(service, str(peak["messages"]), str(peak["replicas"]))
        out.print(scaled)
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


def _cost_against_bare(figures: Figures) -> Table:
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
