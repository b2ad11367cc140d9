"""What every command module shares: the consoles, the options that recur,
the broker of the stack that is up, and the sandbox's lock."""

from __future__ import annotations

from contextlib import AbstractContextManager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from shopctl.runtimes.lock import sandbox_lock
from shopctl.runtimes.select import current_runtime
from shopctl.settings import SandboxSettings

out = Console()
err = Console(stderr=True)

RuntimeChoice = Annotated[
    str,
    typer.Option(
        "--runtime",
        "-r",
        help="docker, local, or auto (docker when an engine answers, else local)",
        envvar="SHOP_RUNTIME",
    ),
]


class SagaChoice(StrEnum):
    choreographed = "choreographed"
    orchestrated = "orchestrated"


def saga_mode(chosen: Any) -> str | None:
    """How the running order service runs new orders (its /inflight says);
    None when it does not answer."""
    answer = chosen.inflight("order")
    mode = answer.get("saga") if answer else None
    return str(mode) if mode else None


PartArgument = Annotated[
    str, typer.Argument(metavar="PART", help="a part of the stack (restart also takes broker)")
]


def broker_url() -> str:
    """The running stack's broker, as this machine reaches it."""
    return current_runtime(SandboxSettings()).broker_url()


def exclusive(settings: SandboxSettings, command: str) -> AbstractContextManager[None]:
    """The sandbox's lock for a command that starts or stops parts."""
    return sandbox_lock(settings.state_dir, command, settings.lock_wait_s, waiting_for)


def waiting_for(holder: str) -> None:
    """Said while a command waits on the sandbox's lock."""
    err.print(f"[yellow]waiting for {holder} to finish[/]")
