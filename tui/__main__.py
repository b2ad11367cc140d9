"""`python -m tui` (what `shopctl tui` starts): the TUI on the running sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

from shopctl.amqp import quiet_broker_clients
from shopctl.errors import ShopError
from shopctl.runtimes.select import current_runtime
from shopctl.settings import SandboxSettings
from tui.app import ShopTui
from tui.backend import Backend


def main() -> None:
    quiet_broker_clients()
    settings = SandboxSettings()
    try:
        runtime = current_runtime(settings)
    except ShopError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(exc.exit_code)
    scenarios = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("scenarios")
    ShopTui(Backend(runtime, settings, scenarios)).run()


if __name__ == "__main__":
    main()
