"""What the TUI asks of the sandbox, through shopctl's library: the parts
and their controls, dead letters, faults, scenarios. Blocking calls run in
threads, so the screen never waits on them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.faults import FaultCommand, FaultSpec
from shopctl.fault_switch import send
from shopctl.observe import deadletters
from shopctl.runtimes.base import PartStatus, Runtime
from shopctl.runtimes.control import control
from shopctl.scenario.execute import run_scenario
from shopctl.scenario.loading import Scenario, load, scenario_files
from shopctl.scenario.runner import Result, Target
from shopctl.settings import SandboxSettings


@dataclass
class Backend:
    """The running sandbox, as the TUI reaches it."""

    runtime: Runtime
    settings: SandboxSettings
    scenarios_dir: Path = field(default_factory=lambda: Path("scenarios"))

    @property
    def broker_url(self) -> str:
        return self.runtime.broker_url()

    async def parts(self) -> list[PartStatus]:
        return await asyncio.to_thread(self.runtime.status)

    async def alerts(self) -> list[str]:
        """The alerts firing at the stack's Prometheus, a line each (none
        when no Prometheus runs beside the stack)."""
        from shopctl.runtimes.prometheus import describe_alert, firing_alerts

        url = self.runtime.prometheus_url()
        if url is None:
            return []
        return [describe_alert(a) for a in await asyncio.to_thread(firing_alerts, url)]

    async def control(self, action: str, part: str) -> None:
        await asyncio.to_thread(control, self.runtime, action, part, lambda *_: None)

    async def inflight(self, part: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.runtime.inflight, part)

    async def dead_letter_depths(self) -> dict[str, int | None]:
        return await deadletters.depths(self.broker_url)

    async def dead_letters(self, queue: str) -> list[deadletters.DeadLetter]:
        return await deadletters.show(self.broker_url, queue, 50)

    async def replay(self, queue: str) -> int:
        return len(await deadletters.replay(self.broker_url, queue))

    async def purge(self, queue: str) -> int:
        return await deadletters.purge(self.broker_url, queue)

    async def set_fault(self, spec: FaultSpec) -> None:
        await send(self.broker_url, spec.part, FaultCommand(action="set", fault=spec))

    async def clear_faults(self, part: str) -> None:
        await send(self.broker_url, part, FaultCommand(action="clear"))

    def scenarios(self) -> list[Scenario]:
        try:
            return [load(path) for path in scenario_files([self.scenarios_dir])]
        except Exception:  # a folder without scenarios, or one bad file: none listed
            return []

    async def run_scenario(self, scenario: Scenario) -> Result:
        gateway = f"http://127.0.0.1:{self.settings.gateway_port}"
        admin = (self.settings.admin_email, self.settings.admin_password)

        def act(action: str, part: str) -> None:
            control(self.runtime, action, part, lambda *_: None)

        def unready() -> list[str]:
            return [s.name for s in self.runtime.status() if s.health != "ready"]

        target = Target(gateway, self.broker_url, admin, act, unready)
        return await run_scenario(scenario, target)
