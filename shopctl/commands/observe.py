"""Watching the stack: `trace` follows every saga live (after its history,
when asked), `why` explains one order."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

import typer

from shopctl.commands.common import err, out
from shopctl.errors import UsageError
from shopctl.runtimes.select import current_runtime
from shopctl.settings import SandboxSettings
from shopctl.stack import part

app = typer.Typer()


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
    spans: Annotated[
        str | None,
        typer.Option(
            "--spans",
            metavar="ORDER",
            help="print this order's spans as a waterfall (the sandbox's span files)",
        ),
    ] = None,
) -> None:
    """Follow every order's saga live from the bus: one line an event, with
    compensations, retries, republished events and dead letters in colour.
    With --spans ORDER: that order's trace, every span inside each step."""
    import asyncio

    if spans is not None:
        _spans(spans)
        return

    from shopctl.observe.trace import Filters, parse_duration

    if part_name is not None:
        part(part_name)
    if until_terminal and not order:
        raise UsageError("--until-terminal needs --order")
    history_s = parse_duration(since) if since else None
    filters = Filters(order, type_, part_name)
    settings = SandboxSettings()
    chosen = current_runtime(settings)
    from shopctl.amqp import quiet_broker_clients

    quiet_broker_clients()
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

    from shopctl.observe.history import HistoryThenLive
    from shopctl.observe.timeline import Tap, TimelineEvent, TimelineStore
    from shopctl.observe.trace import trace_line

    url = chosen.broker_url()
    shown = TimelineStore()
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    merged = HistoryThenLive(arrived.put_nowait)

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

    async with Tap(url, on_event=merged.live):
        err.print(f"[dim]tracing {url.split('@')[-1]}; Ctrl-C to stop[/]")
        if history_s is not None:
            loaded, problems = await merged.load(chosen, history_s)
            for problem in problems:
                err.print(f"[yellow]history incomplete: {problem}[/]")
            err.print(f"[dim]{loaded} events from the last {history_s:g} s; live now[/]")
        deadline = None if seconds is None else asyncio.get_running_loop().time() + seconds
        while not (until_terminal and ended()):
            left = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if left is not None and left <= 0:
                break
            try:
                item = await asyncio.wait_for(arrived.get(), timeout=left)
            except TimeoutError:
                break
            show(item)


def _spans(order: str) -> None:
    from shopctl.observe.spans import read_spans, render_waterfall, traces_of_order

    chosen = current_runtime(SandboxSettings())
    directory = chosen.spans_dir()
    if directory is None:
        raise UsageError(
            f"the {chosen.name} runtime's parts keep no span files here",
            hint="set OTEL_EXPORTER_OTLP_ENDPOINT to send them to your trace backend "
            "(docs/observability.md)",
        )
    every = read_spans(directory) if directory.is_dir() else []
    traces = traces_of_order(every, order)
    if not traces:
        raise UsageError(
            f"no spans of an order {order} in {directory}",
            hint="spans reach the files half a second after they end; "
            "with OTEL_SDK_DISABLED=true or an OTLP endpoint set, none are written",
        )
    for trace_id in traces:
        spans = [s for s in every if s.trace_id == trace_id]
        parts = sorted({s.part for s in spans})
        errors = sum(1 for s in spans if s.error)
        out.print(
            f"[bold]trace {trace_id}[/]  {len(spans)} spans across {', '.join(parts)}"
            + (f"  [red]{errors} failed[/]" if errors else ""),
            highlight=False,
        )
        for line in render_waterfall(spans):
            out.print(line, soft_wrap=True)


@app.command()
def why(
    order: Annotated[
        str, typer.Argument(metavar="ORDER", help="the order's id, or its first 8 characters")
    ],
) -> None:
    """Why an order is where it is: for one not over, the step it waits on,
    where the awaited event is and what would move it on; for one over, the
    path it took and why it ended so."""
    from shopctl.amqp import quiet_broker_clients
    from shopctl.observe.timeline import render_timeline
    from shopctl.observe.why import explain

    quiet_broker_clients()
    explanation = explain(current_runtime(SandboxSettings()), order)
    out.print(f"[bold]{explanation.headline}[/]", highlight=False)
    if explanation.timeline.trace_id:
        out.print(
            f"trace {explanation.timeline.trace_id}  "
            f"[dim](shopctl trace --spans {explanation.timeline.correlation_id[:8]})[/]",
            highlight=False,
        )
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
