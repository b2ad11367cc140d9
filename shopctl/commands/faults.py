"""`shopctl fault`: message-level faults, switched on and off by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from services.common.fault_kinds import FAULT_KINDS
from shopctl.commands.common import broker_url, out
from shopctl.errors import UsageError
from shopctl.stack import part

app = typer.Typer(help="Faults at the message level (sandbox mode only).", no_args_is_help=True)
KINDS = ", ".join(FAULT_KINDS)


@app.command("set")
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


@app.command("clear")
def fault_clear(
    part_name: Annotated[str, typer.Argument(metavar="PART")],
    fault_id: Annotated[str | None, typer.Option("--id", help="only this fault")] = None,
) -> None:
    """Switch PART's faults off (or one of them)."""
    from shopctl.fault_switch import switch_off

    part(part_name)
    switch_off(broker_url(), part_name, fault_id)
    out.print(f"[green]faults off[/] on {part_name}" + (f" ({fault_id})" if fault_id else ""))
