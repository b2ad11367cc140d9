"""The Scenarios pane: the folder's scenario files; enter runs one against
the stack and writes its journal and verdict."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import RichLog

from tui.panes.common import SidePane
from tui.widgets import ScenarioTable


class ScenariosPane(SidePane):
    def compose(self) -> ComposeResult:
        yield ScenarioTable(id="scenarios-table", cursor_type="row")
        yield RichLog(id="scenario-log", wrap=True, markup=False)

    def on_mount(self) -> None:
        table = self.query_one(ScenarioTable)
        table.add_columns("file", "scenario")
        if self.backend is None:
            return
        for scenario in self.backend.scenarios():
            table.add_row(scenario.path.name, scenario.name, key=str(scenario.path))

    async def run(self) -> None:
        path = self.row_key(self.query_one(ScenarioTable))
        if path is None or self.backend is None:
            return
        scenario = next((s for s in self.backend.scenarios() if str(s.path) == path), None)
        if scenario is None:
            return
        log = self.query_one("#scenario-log", RichLog)
        log.write(Text(f"running {scenario.name}…", style="bold"))
        result = await self.backend.run_scenario(scenario)
        for entry in result.journal:
            style = "" if entry.outcome == "ok" else "red"
            log.write(Text(f"{entry.at:7.2f} s  {entry.step}: {entry.outcome}", style=style))
        style = "bold yellow" if result.expected_failure else "bold green"
        style = style if result.as_expected else "bold red"
        verdict = result.verdict if result.expect_failure else result.verdict.upper()
        verdict = "passed" if result.passed and result.as_expected else verdict
        log.write(Text(f"{verdict} in {result.seconds:.1f} s", style=style))
        if result.failure or not result.as_expected:
            log.write(Text(result.verdict_text, style="yellow" if result.as_expected else "red"))
