"""The shopctl command line: parses, calls the library, prints."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .doctor import run_checks
from .errors import EXIT_NO_RUNTIME, ShopError

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
    checks = run_checks()
    table = Table("check", "status", "detail", "how to fix")
    for check in checks:
        status = "[green]ok[/]" if check.ok else "[red]missing[/]"
        table.add_row(check.name, status, check.detail, "" if check.ok else check.fix)
    out.print(table)
    if not all(c.ok for c in checks):
        raise ShopError("some requirements are missing; see the table above")


@app.command()
def catalog() -> None:
    """Print the event catalog (AsyncAPI 3.0, JSON) generated from the event models."""
    from services.common.catalog import asyncapi_document

    out.print_json(json.dumps(asyncapi_document()))


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
    from .demo import load_demo_catalog

    result = load_demo_catalog(gateway, admin_email, admin_password)
    out.print(
        f"[green]demo catalog loaded:[/] {len(result.created)} created, "
        f"{len(result.existing)} already there"
    )


@app.command()
def up() -> None:
    """Start the sandbox stack."""
    raise ShopError(
        "the stack cannot start yet: the services and the runtimes that start them are "
        "still being built",
        hint="the messaging core is in place and tested: run scripts/test",
        exit_code=EXIT_NO_RUNTIME,
    )


def main() -> None:
    """Entry point: usage errors exit 2 (Typer's own handling); errors people
    can fix are one red line, an optional hint and their exit code."""
    try:
        app()
    except ShopError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        if exc.hint:
            err.print(f"[dim]hint: {exc.hint}[/]")
        sys.exit(exc.exit_code)
