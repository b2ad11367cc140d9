"""The shopctl command line: the command groups of shopctl/commands/ put
together, and the one place an error becomes a red line and an exit code."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from shopctl.commands import bench, dlq, faults, k8s, observe, scenarios, stack
from shopctl.commands.common import err
from shopctl.errors import ShopError

app = typer.Typer(
    name="shopctl",
    help="Start, break and watch the shop stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (stack, bench, observe):  # top-level commands: up, down, status, bench, trace, ...
    app.registered_commands += group.app.registered_commands
app.add_typer(faults.app, name="fault")
app.add_typer(scenarios.app, name="scenario")
app.add_typer(dlq.app, name="dlq")
app.add_typer(k8s.app, name="k8s")


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
