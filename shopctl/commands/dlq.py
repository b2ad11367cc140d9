"""`shopctl dlq`: the dead letters, listed, shown, replayed, purged."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shopctl.commands.common import broker_url, out
from shopctl.errors import UsageError

app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)
QueueArgument = Annotated[str, typer.Argument(metavar="QUEUE", help="a dead-letter queue (*.dlq)")]


@app.command("list")
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


@app.command("show")
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


@app.command("replay")
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


@app.command("purge")
def dlq_purge(
    queue: QueueArgument,
    yes: Annotated[bool, typer.Option("--yes", help="really drop them")] = False,
) -> None:
    """Drop every dead letter of QUEUE."""
    from shopctl.observe.deadletters import purge, run

    if not yes:
        raise UsageError(f"purging drops {queue}'s dead letters for good; add --yes")
    out.print(f"[yellow]purged {run(purge(broker_url(), queue))}[/] from {queue}")
