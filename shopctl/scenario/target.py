"""The stack that is up, as the target of scenarios and the fuzzer."""

from __future__ import annotations

from collections.abc import Callable

from shopctl.runtimes.lock import sandbox_lock
from shopctl.runtimes.select import current_runtime
from shopctl.scenario.runner import Target
from shopctl.settings import SandboxSettings


def stack_target(
    settings: SandboxSettings, gateway: str, waiting: Callable[[str], None] = lambda _: None
) -> Target:
    """The stack that is up, as a scenario's target: its parts controlled
    and waited on through its runtime (when this sandbox's runtime runs it).
    ``waiting`` hears who holds the sandbox's lock when a control waits on it."""

    def control_part(action: str, name: str) -> None:
        from shopctl.runtimes.control import control

        with sandbox_lock(settings.state_dir, action, settings.lock_wait_s, waiting):
            control(current_runtime(settings), action, name, lambda *_: None)

    def unready() -> list[str]:
        return [s.name for s in current_runtime(settings).status() if s.health != "ready"]

    # A gateway that answers while this sandbox's runtime runs no part is a
    # stack of someone else's (a test's, another tool's): its parts cannot be
    # controlled from here, nor waited on
    managed = any(s.state == "running" for s in current_runtime(settings).status())
    return Target(
        gateway,
        current_runtime(settings).broker_url(),
        (settings.admin_email, settings.admin_password),
        control_part if managed else None,
        unready if managed else None,
        settings.ready_timeout_s,
    )
